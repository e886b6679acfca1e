//go:build !linux

package persistence

import "os"

// openDirect: direct I/O is used on Linux only; elsewhere UFS writes go
// through the page cache.
func openDirect(*os.Root, string) *os.File { return nil }
