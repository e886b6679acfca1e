package tests

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/cespare/xxhash/v2"

	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/persistence/s3test"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// checkerArgs run the persistence checker and the scheduler fast.
var checkerArgs = []string{"--persist-interval", "200ms", "--persist-check-interval", "200ms", "--lease-ttl", "2s"}

// TestPersistCheckerLocal: a persisted file whose UFS copy is deleted
// behind cairn's back is taken back and uploaded again from its cached
// copy; one whose copy another program changed is held (not persisted,
// its copies unevictable, the other program's bytes left alone) until
// cairn fs persist puts cairn's version back.
func TestPersistCheckerLocal(t *testing.T) {
	c := startClusterWith(t, 1, 2, checkerArgs, nil)
	ufs := filepath.Join(c.masters[0].dir, "ufs")
	persistCheckerScenario(t, c, "/chk", func(p string) string { return filepath.Join(ufs, p) })
}

// TestPersistCheckerS3 is the same against an S3 mount (versitygw keeps
// an object as a plain file, which the test deletes and rewrites), and a
// store that stops answering is never taken for a missing copy.
func TestPersistCheckerS3(t *testing.T) {
	srv := s3test.Start(t)
	srv.Setenv(t)
	srv.Bucket(t, s3Bucket)
	c := startClusterWith(t, 1, 2, checkerArgs, nil)
	if out, err := mountS3(t, c, srv, "/s3", "s3://"+s3Bucket+"/"+s3Prefix); err != nil {
		t.Fatalf("mount add: %v\n%s", err, out)
	}
	persistCheckerScenario(t, c, "/s3/chk", func(p string) string { return bucketFile(srv, strings.TrimPrefix(p, "/s3/")) })

	// The store stops answering: the checker counts errors and journals
	// nothing about the files it could not see.
	drifts := metric(t, c.masters[0].api, "cairn_persist_ufs_drifts_total", "")
	srv.Stop()
	eventually(t, time.Minute, "the checker to count a store that does not answer", func() bool {
		return metric(t, c.masters[0].api, "cairn_persist_checks_total", `outcome="error"`) > 0
	})
	errs := metric(t, c.masters[0].api, "cairn_persist_checks_total", `outcome="error"`)
	eventually(t, time.Minute, "three more checker ticks against the dead store", func() bool {
		return metric(t, c.masters[0].api, "cairn_persist_checks_total", `outcome="error"`) >= errs+3
	})
	if got := metric(t, c.masters[0].api, "cairn_persist_ufs_drifts_total", ""); got != drifts {
		t.Fatalf("drifts went from %v to %v while the store did not answer", drifts, got)
	}
	f, err := c.client().Files().Stat(context.Background(), "/s3/chk/gone")
	if err != nil || f.GetPersistenceState() != cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED {
		t.Fatalf("/s3/chk/gone while the store is down: %v %v", f.GetPersistenceState(), err)
	}
}

func persistCheckerScenario(t *testing.T, c *cluster, dir string, ufsFile func(p string) string) {
	if out, err := cairn(t, "cluster", "replication", "2", "--masters", c.addrs()); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	mapWith(t, c, 2)
	ctx := context.Background()
	files := c.client().Files()
	gone, changed := dir+"/gone", dir+"/changed"
	data := map[string][]byte{gone: randomBytes(300_000, 1), changed: randomBytes(200_000, 2)}
	for p, b := range data {
		if _, err := files.Put(ctx, p, bytes.NewReader(b), int64(len(b)), client.PutOptions{WriteType: cairnv1.WriteType_WRITE_TYPE_CACHE_THROUGH}); err != nil {
			t.Fatal(err)
		}
	}
	stat := func(p string) *cairnv1.File {
		t.Helper()
		f, err := files.Stat(ctx, p)
		if err != nil {
			t.Fatalf("stat %s: %v", p, err)
		}
		return f
	}
	for p := range data {
		if s := stat(p).GetPersistenceState(); s != cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED {
			t.Fatalf("%s is %s after a CACHE_THROUGH write", p, s)
		}
	}
	// Let the checker pass over the intact copies first.
	eventually(t, 30*time.Second, "the checker to find the copies intact", func() bool {
		return metric(t, c.masters[0].api, "cairn_persist_checks_total", `outcome="intact"`) >= 2
	})
	before := metric(t, c.masters[0].api, "cairn_persist_ufs_drifts_total", "")

	// Behind cairn's back: one copy deleted, one replaced by other bytes.
	if err := os.Remove(ufsFile(gone)); err != nil {
		t.Fatal(err)
	}
	other := []byte("another program wrote this")
	if err := os.WriteFile(ufsFile(changed), other, 0o644); err != nil {
		t.Fatal(err)
	}

	eventually(t, 30*time.Second, "fs stat to show the changed copy", func() bool {
		out, err := cairn(t, "fs", "stat", changed, "--masters", c.addrs())
		return err == nil && strings.Contains(out, "TO_BE_PERSISTED") && strings.Contains(out, "changed by another writer") &&
			strings.Contains(out, "changed: ")
	})
	eventually(t, 30*time.Second, "fs stat to show the removed copy", func() bool {
		out, err := cairn(t, "fs", "stat", gone, "--masters", c.addrs())
		return err == nil && strings.Contains(out, "gone: nothing at "+gone)
	})
	if got := metric(t, c.masters[0].api, "cairn_persist_ufs_drifts_total", ""); got != before+2 {
		t.Fatalf("cairn_persist_ufs_drifts_total %v, want %v", got, before+2)
	}
	if metric(t, c.masters[0].api, "cairn_persist_checks_total", `outcome="gone"`) < 1 ||
		metric(t, c.masters[0].api, "cairn_persist_checks_total", `outcome="changed"`) < 1 {
		t.Fatal("cairn_persist_checks_total did not count a gone and a changed copy")
	}

	// The removed copy is uploaded again from the cache.
	eventually(t, 30*time.Second, gone+" to be uploaded again", func() bool {
		return stat(gone).GetPersistenceState() == cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED
	})
	if b, err := os.ReadFile(ufsFile(gone)); err != nil || xxhash.Sum64(b) != xxhash.Sum64(data[gone]) {
		t.Fatalf("%s in the UFS after the new upload: %v (%d bytes)", gone, err, len(b))
	}

	// The changed one's copies are the only copies of its version: kept,
	// unevictable on every owner, and read back intact; the other
	// program's bytes stay in the UFS.
	ws, _ := workerClients(t, c)
	eventually(t, 30*time.Second, "both copies of "+changed+" to be unevictable again", func() bool {
		n := 0
		for _, w := range ws {
			resp, err := w.Stat(ctx, connect.NewRequest(&cairnv1.StatRequest{Paths: []string{changed}}))
			if err != nil {
				return false
			}
			for _, cf := range resp.Msg.GetFiles() {
				if cf.GetUnpersisted() {
					n++
				}
			}
		}
		return n == 2
	})
	var buf bytes.Buffer
	if _, err := files.Get(ctx, changed, &buf, client.GetOptions{}); err != nil || !bytes.Equal(buf.Bytes(), data[changed]) {
		t.Fatalf("read %s: %v (%d bytes)", changed, err, buf.Len())
	}
	if b, _ := os.ReadFile(ufsFile(changed)); !bytes.Equal(b, other) {
		t.Fatalf("cairn wrote over the other program's %s without being asked", changed)
	}
	// cairn fs persist puts cairn's version back.
	if out, err := cairn(t, "fs", "persist", changed, "--masters", c.addrs()); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	eventually(t, 30*time.Second, changed+" to be persisted again", func() bool {
		return stat(changed).GetPersistenceState() == cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED
	})
	if b, err := os.ReadFile(ufsFile(changed)); err != nil || !bytes.Equal(b, data[changed]) {
		t.Fatalf("%s in the UFS after cairn fs persist: %v (%d bytes)", changed, err, len(b))
	}
}
