package persistence

import (
	"errors"
	"strings"
	"testing"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

func table(paths ...string) []*cairnv1.Mount {
	var ms []*cairnv1.Mount
	for _, p := range paths {
		m := &cairnv1.Mount{Path: strings.TrimSuffix(p, "!"), Uri: "file:///u" + strings.TrimSuffix(p, "!")}
		if strings.HasSuffix(p, "!") {
			m = &cairnv1.Mount{Path: m.GetPath(), CacheOnly: true}
		}
		ms = append(ms, m)
	}
	return ms
}

func TestResolve(t *testing.T) {
	t.Parallel()
	ms := table("/", "/s3", "/s3/deep", "/cache-only!", "/s3x")
	for _, c := range []struct{ p, mount, rel string }{
		{"/a", "/", "/a"},
		{"/", "/", "/"},
		{"/s3", "/s3", "/"},
		{"/s3/a/b", "/s3", "/a/b"},
		{"/s3/deep", "/s3/deep", "/"},
		{"/s3/deep/x", "/s3/deep", "/x"},
		{"/s3/deeper/x", "/s3", "/deeper/x"},
		{"/s3x/y", "/s3x", "/y"},
		{"/s3y", "/", "/s3y"},
		{"/cache-only/f", "/cache-only", "/f"},
	} {
		mt, rel, ok := Resolve(ms, c.p)
		if !ok || mt.GetPath() != c.mount || rel != c.rel {
			t.Errorf("Resolve(%s) = %s %q %v, want %s %q", c.p, mt.GetPath(), rel, ok, c.mount, c.rel)
		}
	}
	// The order of the table does not matter.
	rev := []*cairnv1.Mount{ms[4], ms[3], ms[2], ms[1], ms[0]}
	if mt, _, _ := Resolve(rev, "/s3/deep/x"); mt.GetPath() != "/s3/deep" {
		t.Errorf("reversed table: %s", mt.GetPath())
	}
	if _, _, ok := Resolve(table("/s3"), "/elsewhere"); ok {
		t.Error("a path no mount holds resolved")
	}
	if _, _, err := ResolveUFS(table("/s3"), "/elsewhere"); !errors.Is(err, ErrNoMount) {
		t.Errorf("ResolveUFS outside every mount: %v", err)
	}
	if _, _, err := ResolveUFS(ms, "/cache-only/x"); !errors.Is(err, ErrCacheOnly) || !strings.Contains(err.Error(), "/cache-only/x") {
		t.Errorf("ResolveUFS under the cache-only mount: %v", err)
	}
}

// FuzzResolve: whatever the table and the path, the mount found holds the
// path, no longer mount does, and the mount's path joined with rel gives
// the path back.
func FuzzResolve(f *testing.F) {
	f.Add("/,/s3,/s3/a", "/s3/a/b")
	f.Add("/a,/ab", "/ab/c")
	f.Add("/x/y", "/x")
	f.Add("", "/")
	f.Fuzz(func(t *testing.T, mounts, p string) {
		var ms []*cairnv1.Mount
		for _, m := range strings.Split(mounts, ",") {
			if c, err := CleanPath(m); err == nil {
				ms = append(ms, &cairnv1.Mount{Path: c})
			}
		}
		c, err := CleanPath(p)
		if err != nil {
			return
		}
		mt, rel, ok := Resolve(ms, c)
		if !ok {
			for _, m := range ms {
				if Under(c, m.GetPath()) {
					t.Fatalf("%s holds %s, but it did not resolve", m.GetPath(), c)
				}
			}
			return
		}
		if !Under(c, mt.GetPath()) {
			t.Fatalf("%s resolved to %s, which does not hold it", c, mt.GetPath())
		}
		for _, m := range ms {
			if Under(c, m.GetPath()) && len(m.GetPath()) > len(mt.GetPath()) {
				t.Fatalf("%s resolved to %s, but %s is longer and holds it", c, mt.GetPath(), m.GetPath())
			}
		}
		if r, err := CleanPath(rel); err != nil || r != rel {
			t.Fatalf("rel %q of %s is not a clean path: %v", rel, c, err)
		}
		back := strings.TrimSuffix(mt.GetPath(), "/") + rel
		if rel == "/" {
			back = mt.GetPath()
		}
		if back != c {
			t.Fatalf("%s under %s is %q, which joins back to %q", c, mt.GetPath(), rel, back)
		}
	})
}
