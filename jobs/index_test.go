package jobs

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseIndex(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in string
		want     []string
		err      string
	}{
		{"paths in order", "/b/2\n/a/1\n", []string{"/b/2", "/a/1"}, ""},
		{"comments, blanks, spaces and CRLF", "# old data\n\n  /a/1  \r\n/a/2", []string{"/a/1", "/a/2"}, ""},
		{"a relative path names its line", "/a/1\n\nb/2\n", nil, `line 3: "b/2" is not an absolute path`},
		{"nothing listed", "# only a comment\n\n", nil, ErrEmptyIndex.Error()},
		{"empty", "", nil, ErrEmptyIndex.Error()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseIndex(strings.NewReader(c.in))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %v %v, want an error containing %q", got, err, c.err)
				}
				if c.err == ErrEmptyIndex.Error() && !errors.Is(err, ErrEmptyIndex) {
					t.Fatalf("%v is not ErrEmptyIndex", err)
				}
				return
			}
			if err != nil || !slices.Equal(got, c.want) {
				t.Fatalf("got %q %v, want %q", got, err, c.want)
			}
		})
	}
}
