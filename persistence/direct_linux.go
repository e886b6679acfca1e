package persistence

import (
	"os"
	"syscall"
)

// openDirect opens name under root for writing with O_DIRECT, or returns
// nil when the file system refuses it (tmpfs, some network file systems):
// the write then goes through the page cache.
func openDirect(root *os.Root, name string) *os.File {
	f, err := root.OpenFile(name, os.O_WRONLY|syscall.O_DIRECT, 0)
	if err != nil {
		return nil
	}
	return f
}
