//go:build !linux

package main

// directFlag: direct I/O is measured on Linux only.
const directFlag = 0

// alignedCopy returns b (no alignment is needed without direct I/O).
func alignedCopy(b []byte) []byte { return b }
