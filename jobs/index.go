package jobs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrEmptyIndex is returned by ParseIndex for an index that lists no path.
var ErrEmptyIndex = errors.New("the index lists no paths")

// ParseIndex reads an index file: the paths a FREE job frees, one absolute
// path per line. Blank lines and lines starting with # are skipped and
// surrounding spaces are trimmed. A line that is not an absolute path is
// refused with its number; an index without any path is ErrEmptyIndex.
// Paths are returned in the file's order, not cleaned: the master cleans
// and checks them when it plans the job. The CLI's --index file and the
// REST cache API's index body share this format.
func ParseIndex(r io.Reader) ([]string, error) {
	var paths []string
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.HasPrefix(line, "/") {
			return nil, fmt.Errorf("line %d: %q is not an absolute path", n, line)
		}
		paths = append(paths, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read the index: %w", err)
	}
	if len(paths) == 0 {
		return nil, ErrEmptyIndex
	}
	return paths, nil
}
