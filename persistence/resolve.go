package persistence

import (
	"errors"
	"fmt"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// ErrNoMount is wrapped when no mount serves a path, and ErrCacheOnly when
// the mount that serves it is cache-only: there is no UFS behind it.
var (
	ErrNoMount   = errors.New("no mount serves the path")
	ErrCacheOnly = errors.New("the path is under the cache-only mount, which has no UFS behind it")
)

// Resolve finds the mount that serves clean path p: of the mounts whose
// path holds p (by whole segments), the one with the longest path. rel is
// p inside that mount ("/" for the mount's own path). It is a pure
// function of the table, so every master and worker resolves a path the
// same way against the same table.
func Resolve(mounts []*cairnv1.Mount, p string) (mt *cairnv1.Mount, rel string, ok bool) {
	for _, m := range mounts {
		if Under(p, m.GetPath()) && (mt == nil || len(m.GetPath()) > len(mt.GetPath())) {
			mt = m
		}
	}
	if mt == nil {
		return nil, "", false
	}
	return mt, Rel(p, mt.GetPath()), true
}

// Rel is clean path p, which is under mount path mp, relative to mp: "/"
// when they are equal.
func Rel(p, mp string) string {
	if mp == "/" {
		return p
	}
	if len(p) == len(mp) {
		return "/"
	}
	return p[len(mp):]
}

// ResolveUFS is Resolve for a path that must reach a UFS: it fails with
// ErrNoMount or ErrCacheOnly (naming the path and the mount) when none
// serves it.
func ResolveUFS(mounts []*cairnv1.Mount, p string) (*cairnv1.Mount, string, error) {
	mt, rel, ok := Resolve(mounts, p)
	switch {
	case !ok:
		return nil, "", fmt.Errorf("%w: %s (mount a UFS at / or above it: cairn mount add)", ErrNoMount, p)
	case mt.GetCacheOnly():
		return nil, "", fmt.Errorf("%w: %s is under %s", ErrCacheOnly, p, mt.GetPath())
	}
	return mt, rel, nil
}

// Overlaps reports whether clean paths a and b are one inside the other
// (or equal).
func Overlaps(a, b string) bool { return Under(a, b) || Under(b, a) }
