//go:build !linux

package directio

// Flag opens a file for direct I/O: 0, as direct I/O is used on Linux only.
const Flag = 0
