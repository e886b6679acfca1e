//go:build !linux

package directio

// directFlag 0: direct I/O is used on Linux only.
const directFlag = 0
