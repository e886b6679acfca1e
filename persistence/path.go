package persistence

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxPathBytes bounds a cairn path; MaxNameBytes bounds one segment of it.
const (
	MaxPathBytes = 4096
	MaxNameBytes = 255
)

// ErrInvalidPath is wrapped by every error about a malformed path.
var ErrInvalidPath = errors.New("invalid path")

// CleanPath checks that p is a canonical cairn path and returns it: it
// must be valid UTF-8 without control characters (NUL, newlines, DEL, ...),
// start with "/", and every segment must be non-empty, not "." or "..", at
// most MaxNameBytes long. One trailing slash is dropped ("/a/" is "/a");
// "/" itself is the root.
func CleanPath(p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidPath)
	}
	if len(p) > MaxPathBytes {
		return "", fmt.Errorf("%w: %d bytes, over the %d-byte limit", ErrInvalidPath, len(p), MaxPathBytes)
	}
	if p[0] != '/' {
		return "", fmt.Errorf("%w: %q is relative; paths start with /", ErrInvalidPath, p)
	}
	if !utf8.ValidString(p) {
		return "", fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalidPath, p)
	}
	if i := strings.IndexFunc(p, unicode.IsControl); i >= 0 {
		return "", fmt.Errorf("%w: %q contains a control character (%U) at byte %d", ErrInvalidPath, p, []rune(p[i:])[0], i)
	}
	if p == "/" {
		return p, nil
	}
	q := strings.TrimSuffix(p, "/")
	for _, seg := range strings.Split(q[1:], "/") {
		switch {
		case seg == "":
			return "", fmt.Errorf("%w: %q has an empty segment", ErrInvalidPath, p)
		case seg == "." || seg == "..":
			return "", fmt.Errorf("%w: %q has a %q segment", ErrInvalidPath, p, seg)
		case len(seg) > MaxNameBytes:
			return "", fmt.Errorf("%w: a segment of %q is %d bytes, over the %d-byte limit", ErrInvalidPath, p, len(seg), MaxNameBytes)
		}
	}
	return q, nil
}

// Parent returns the directory holding a clean path ("/" for "/a").
func Parent(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// Under reports whether clean path p is prefix itself or inside it, by
// whole segments: "/ab" is not under "/a".
func Under(p, prefix string) bool {
	if prefix == "/" {
		return true
	}
	return p == prefix || strings.HasPrefix(p, prefix) && p[len(prefix)] == '/'
}
