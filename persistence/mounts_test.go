package persistence

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cairnhq/cairn/persistence/s3test"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

func TestMounts(t *testing.T) {
	srv := s3test.Start(t)
	srv.Setenv(t)
	srv.Bucket(t, "bkt")
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "ufs")
	table := []*cairnv1.Mount{
		{Path: "/", UfsRoot: dir, Uri: "file://" + dir, FromFlag: true},
		{Path: "/s3", Uri: "s3://bkt/p", Options: map[string]string{"endpoint": srv.Endpoint, "path_style": "true"}},
		{Path: "/cache-only", CacheOnly: true},
		{Path: "/typo", Uri: "file:///no/such/dir"},
	}
	reg := prometheus.NewRegistry()
	ms := NewMounts(NewMetrics(reg))
	defer ms.Close()

	put := func(p, data string) {
		t.Helper()
		tg, err := ms.Resolve(ctx, table, p)
		if err != nil {
			t.Fatal(err)
		}
		w, err := tg.UFS.Create(ctx, tg.Path)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(data))
		if _, err := w.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	put("/s3/a/b", "in the bucket")
	put("/local/c", "in the folder")
	if b, _ := readAll(t, mustOpen(t, ms, table[1]), "/a/b"); string(b) != "in the bucket" {
		t.Fatalf("/s3/a/b is not bkt/p/a/b: %q", b)
	}
	if b, _ := readAll(t, mustOpen(t, ms, table[0]), "/local/c"); string(b) != "in the folder" {
		t.Fatalf("/local/c: %q", b)
	}
	a, _ := ms.Resolve(ctx, table, "/s3/x")
	b, _ := ms.Resolve(ctx, table, "/s3/y")
	if a.UFS != b.UFS || a.Label() != "/s3 (s3://bkt/p)" {
		t.Fatalf("one mount, two UFSes (%p, %p), or label %q", a.UFS, b.UFS, a.Label())
	}
	if _, err := ms.Resolve(ctx, table, "/cache-only/f"); !errors.Is(err, ErrCacheOnly) {
		t.Fatalf("under the cache-only mount: %v", err)
	}
	if _, err := ms.Resolve(ctx, table, "/typo/f"); err == nil {
		t.Fatal("a file mount of a missing folder opened (and would have made it)")
	}
	if got := testutil.ToFloat64(ms.metrics.ops.WithLabelValues("/s3", "commit")); got != 1 {
		t.Fatalf("cairn_ufs_requests_total{mount=/s3,op=commit} = %v", got)
	}
	if got := testutil.ToFloat64(ms.metrics.bytes.WithLabelValues("/s3", "written")); got != float64(len("in the bucket")) {
		t.Fatalf("bytes written to /s3: %v", got)
	}
	tg, _ := ms.Resolve(ctx, table, "/s3/missing")
	tg.UFS.Stat(ctx, tg.Path)
	if got := testutil.ToFloat64(ms.metrics.errs.WithLabelValues("/s3", "stat", "not_found")); got != 1 {
		t.Fatalf("not-found stats of /s3: %v", got)
	}
	// A changed mount is opened anew; a removed one is closed.
	table[1] = &cairnv1.Mount{Path: "/s3", Uri: "s3://bkt/q", Options: table[1].GetOptions()}
	c, _ := ms.Resolve(ctx, table, "/s3/x")
	if c.UFS == a.UFS {
		t.Fatal("a mount whose URI changed kept its old UFS")
	}
	ms.Retain(table[:1])
	if len(ms.open) != 1 {
		t.Fatalf("%d UFSes open after Retain of one mount", len(ms.open))
	}
}

func mustOpen(t *testing.T, ms *Mounts, mt *cairnv1.Mount) UFS {
	t.Helper()
	u, err := ms.Open(context.Background(), mt)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
