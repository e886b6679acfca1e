package persistence

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// Mounts opens the UFS behind each mount of the table once and keeps it
// while the mount stays the same, so that a process resolves a path to an
// open UFS without opening a store per request. It does not keep the
// table: callers pass the one they hold (the state machine's, on a
// master; the masters' answer, on a worker).
type Mounts struct {
	metrics *Metrics
	mu      sync.Mutex
	open    map[string]*opened // by mount path
}

type opened struct {
	key string // what the mount was opened as: URI and options
	ufs UFS    // measured
	raw UFS
}

// Target is where a path lives: the UFS of its mount, the path inside it
// and the mount.
type Target struct {
	UFS   UFS
	Path  string
	Mount *cairnv1.Mount
}

// Label names the target's mount for people.
func (t Target) Label() string { return Describe(t.Mount) }

// NewMounts opens UFSes counted by metrics (nil: not counted).
func NewMounts(metrics *Metrics) *Mounts {
	return &Mounts{metrics: metrics, open: map[string]*opened{}}
}

// keyOf is what identifies a mount's store: its URI and options.
func keyOf(mt *cairnv1.Mount) string {
	var b strings.Builder
	b.WriteString(mt.GetUri())
	b.WriteString("\x00" + mt.GetUfsRoot())
	keys := make([]string, 0, len(mt.GetOptions()))
	for k := range mt.GetOptions() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString("\x00" + k + "=" + mt.GetOptions()[k])
	}
	return b.String()
}

// Open returns the UFS of a mount that is not cache-only, opening it the
// first time (and again when the mount at its path has changed).
func (ms *Mounts) Open(ctx context.Context, mt *cairnv1.Mount) (UFS, error) {
	key := keyOf(mt)
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if o, ok := ms.open[mt.GetPath()]; ok && o.key == key {
		return o.ufs, nil
	}
	raw, err := OpenMount(ctx, mt, ms.metrics.retried(mt.GetPath()))
	if err != nil {
		return nil, err
	}
	if o, ok := ms.open[mt.GetPath()]; ok {
		closeUFS(o.raw)
	}
	o := &opened{key: key, raw: raw, ufs: raw}
	if ms.metrics != nil {
		o.ufs = ms.metrics.instrument(mt.GetPath(), raw)
	}
	ms.open[mt.GetPath()] = o
	return o.ufs, nil
}

// Resolve finds the mount of clean path p in table (see Resolve) and
// opens its UFS. A path under the cache-only mount or under no mount is
// ErrCacheOnly or ErrNoMount.
func (ms *Mounts) Resolve(ctx context.Context, table []*cairnv1.Mount, p string) (Target, error) {
	mt, rel, err := ResolveUFS(table, p)
	if err != nil {
		return Target{}, err
	}
	u, err := ms.Open(ctx, mt)
	if err != nil {
		return Target{}, err
	}
	return Target{UFS: u, Path: rel, Mount: mt}, nil
}

// Retain closes the UFSes of mounts that are no longer in table.
func (ms *Mounts) Retain(table []*cairnv1.Mount) {
	keep := map[string]string{}
	for _, mt := range table {
		keep[mt.GetPath()] = keyOf(mt)
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for p, o := range ms.open {
		if k, ok := keep[p]; !ok || k != o.key {
			closeUFS(o.raw)
			delete(ms.open, p)
		}
	}
}

// Close closes every open UFS.
func (ms *Mounts) Close() error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	var errs []error
	for p, o := range ms.open {
		errs = append(errs, closeUFS(o.raw))
		delete(ms.open, p)
	}
	return errors.Join(errs...)
}

func closeUFS(u UFS) error {
	if c, ok := u.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// OpenMount opens the UFS of a mount that is not cache-only: a local
// directory (created only for a master's own --ufs default, so that a
// typo in a mount is not silently a new empty folder) or an object store.
// onRetry, if set, is told about each retried request to a store.
func OpenMount(ctx context.Context, mt *cairnv1.Mount, onRetry func()) (UFS, error) {
	spec, err := SpecOf(mt)
	if err != nil {
		return nil, err
	}
	label := Describe(mt)
	switch spec.Scheme {
	case SchemeFile:
		l, err := openLocal(spec.Dir, mt.GetFromFlag())
		if err != nil {
			return nil, fmt.Errorf("UFS %s: %w", label, err)
		}
		return l, nil
	case SchemeS3:
		return NewS3(ctx, spec, S3Config{Label: label, OnRetry: onRetry})
	}
	return nil, fmt.Errorf("%w: %s: no UFS for scheme %q", ErrBadMount, label, spec.Scheme)
}
