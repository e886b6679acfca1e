package main

import (
	"syscall"
	"unsafe"
)

// directFlag opens a file for direct I/O.
const directFlag = syscall.O_DIRECT

// alignedCopy returns b's bytes in memory aligned for direct I/O.
func alignedCopy(b []byte) []byte {
	raw := make([]byte, len(b)+4096)
	skip := (4096 - int(uintptr(unsafe.Pointer(&raw[0]))%4096)) % 4096
	out := raw[skip : skip+len(b)]
	copy(out, b)
	return out
}
