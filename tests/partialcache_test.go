package tests

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cairnhq/cairn/client"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// TestPartialCaching: a ranged read of a file no worker caches caches the
// whole file by default (Alluxio's partial caching); with
// --no-partial-caching for one read, or the cluster setting cache.partial
// false for all, the range is served from the UFS and nothing is cached,
// while a read of the whole file still caches it.
func TestPartialCaching(t *testing.T) {
	c := startCluster(t, 1, 1)
	ctx := context.Background()
	files := c.client().Files()
	data := map[string][]byte{}
	versions := map[string]uint64{}
	for i, p := range []string{"/pc/on", "/pc/off-read", "/pc/off-cluster", "/pc/whole"} {
		b := randomBytes(3<<20, uint64(i+10))
		f, err := files.Put(ctx, p, bytes.NewReader(b), int64(len(b)), client.PutOptions{WriteType: cairnv1.WriteType_WRITE_TYPE_THROUGH})
		if err != nil {
			t.Fatal(err)
		}
		versions[p] = f.GetVersion()
		data[p] = b
	}
	ws, cm := workerClients(t, c)
	workerAPI := cm.GetWorkers()[0].GetAddress()
	cached := func(p string) bool { return len(holders(t, ws, p, versions[p])) > 0 }
	for p := range data {
		if cached(p) {
			t.Fatalf("%s is cached after a THROUGH write", p)
		}
	}
	cat := func(p string, args ...string) {
		t.Helper()
		out, err := cairn(t, append([]string{"fs", "cat", p, "--masters", c.addrs()}, args...)...)
		if err != nil {
			t.Fatalf("fs cat %s %v: %v", p, args, err)
		}
		want := data[p]
		if len(args) > 0 && args[0] == "--offset" {
			want = want[1000 : 1000+4096]
		}
		if out != string(want) {
			t.Fatalf("fs cat %s %v: %d bytes, not the file's", p, args, len(out))
		}
	}
	rng := []string{"--offset", "1000", "--length", "4096"}

	// One read turns it off; then a default ranged read of another file,
	// which fills its whole file, is the barrier: the first read's fill,
	// had it started, would have had as long.
	cat("/pc/off-read", append(rng, "--no-partial-caching")...)
	cat("/pc/on", rng...)
	eventually(t, 30*time.Second, "a ranged read to cache the whole file", func() bool { return cached("/pc/on") })
	if cached("/pc/off-read") {
		t.Fatal("a ranged read with --no-partial-caching cached the file")
	}

	// The cluster setting, journaled, reaches the worker by its heartbeat.
	if out, err := cairn(t, "job", "settings", "cache.partial", "false", "--masters", c.addrs()); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out, err := cairn(t, "job", "settings", "--masters", c.addrs())
	if err != nil || !bytes.Contains([]byte(out), []byte("cache.partial")) {
		t.Fatalf("job settings: %v\n%s", err, out)
	}
	eventually(t, 30*time.Second, "the worker to learn cache.partial false", func() bool {
		return metric(t, workerAPI, "cairn_worker_partial_caching", "") == 0
	})
	cat("/pc/off-cluster", rng...)
	cat("/pc/whole") // the whole file still caches
	eventually(t, 30*time.Second, "a read of a whole file to cache it", func() bool { return cached("/pc/whole") })
	if cached("/pc/off-cluster") {
		t.Fatal("a ranged read with cache.partial false cached the file")
	}
	if _, err := cairn(t, "job", "settings", "cache.partial", "true", "--masters", c.addrs()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the worker to learn cache.partial true", func() bool {
		return metric(t, workerAPI, "cairn_worker_partial_caching", "") == 1
	})
	cat("/pc/off-cluster", rng...)
	eventually(t, 30*time.Second, fmt.Sprintf("%s to be cached once partial caching is back", "/pc/off-cluster"), func() bool { return cached("/pc/off-cluster") })
}
