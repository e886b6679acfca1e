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
	"google.golang.org/protobuf/proto"

	"github.com/cairnhq/cairn/client"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// TestUploadMapping: with the seed's mapping file, cache-only files under a
// mapped sub-path reach their mapped UFS path with the same bytes,
// blacklisted names never do (the seed's plain ".tmp" excludes every name
// that holds it, "scratch.tmp" and "x.tmp.1"; a glob must match the whole
// name), unmapped cache-only files stay NOT_PERSISTED; a bad mapping is refused with the line and the reason and
// the mapping in force stays.
func TestUploadMapping(t *testing.T) {
	mapping := filepath.Join(t.TempDir(), "mapping.json")
	good := `{
  "cacheOnlyMountPoint": "/cache-only",
  "asyncUploadPathMapping": {"/cache-only/ckpt": "/archive/ckpt"},
  "blackList": [".tmp", "_SUCCESS", "*.crc"]
}`
	if err := os.WriteFile(mapping, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	c := startClusterWith(t, 1, 2, []string{"--cache-only-mount", "/cache-only", "--cache-only-replication", "2", "--async-upload-mapping", mapping, "--persist-interval", "200ms"}, nil)
	ufs := filepath.Join(c.masters[0].dir, "ufs")
	files := c.client().Files()
	put := func(p string, data []byte) {
		t.Helper()
		if _, err := files.Put(context.Background(), p, bytes.NewReader(data), int64(len(data)), client.PutOptions{}); err != nil {
			t.Fatalf("put %s: %v", p, err)
		}
	}
	ckpt := randomBytes(300000, 1)
	put("/cache-only/ckpt/step-1/model.bin", ckpt)
	put("/cache-only/ckpt/step-1/scratch.tmp", randomBytes(100, 2))
	put("/cache-only/ckpt/step-1/x.tmp.1", randomBytes(100, 4))
	put("/cache-only/ckpt/step-1/_SUCCESS", nil)
	put("/cache-only/ckpt/step-1/model.bin.crc", randomBytes(8, 5))
	put("/cache-only/shuffle/part-0", randomBytes(100, 3))
	// The mount's replication: every cache-only file is on both workers.
	ws, _ := workerClients(t, c)
	if f, err := files.Stat(context.Background(), "/cache-only/shuffle/part-0"); err != nil || f.GetReplication() != 2 || len(holders(t, ws, f.GetPath(), f.GetVersion())) != 2 {
		t.Fatalf("a cache-only file under --cache-only-replication 2: %v %v", f, err)
	}
	state := func(p string) *cairnv1.File {
		f, err := files.Stat(context.Background(), p)
		if err != nil {
			t.Fatalf("stat %s: %v", p, err)
		}
		return f
	}
	eventually(t, 30*time.Second, "the mapped file to be PERSISTED", func() bool {
		return state("/cache-only/ckpt/step-1/model.bin").GetPersistenceState() == cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED
	})
	if b, err := os.ReadFile(filepath.Join(ufs, "archive/ckpt/step-1/model.bin")); err != nil || xxhash.Sum64(b) != xxhash.Sum64(ckpt) {
		t.Fatalf("the mapped UFS path: %v", err)
	}
	for _, p := range []string{"/cache-only/ckpt/step-1/scratch.tmp", "/cache-only/ckpt/step-1/x.tmp.1", "/cache-only/ckpt/step-1/_SUCCESS",
		"/cache-only/ckpt/step-1/model.bin.crc", "/cache-only/shuffle/part-0"} {
		if s := state(p).GetPersistenceState(); s != cairnv1.PersistenceState_PERSISTENCE_STATE_NOT_PERSISTED {
			t.Errorf("%s is %s", p, s)
		}
	}
	var inUFS []string
	filepath.WalkDir(ufs, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			inUFS = append(inUFS, strings.TrimPrefix(p, ufs))
		}
		return nil
	})
	if len(inUFS) != 1 || inUFS[0] != "/archive/ckpt/step-1/model.bin" {
		t.Fatalf("the UFS holds %v", inUFS)
	}

	t.Run("restore from the UFS, and DataLoss when it cannot be trusted", func(t *testing.T) {
		ws, _ := workerClients(t, c)
		p := "/cache-only/ckpt/step-1/model.bin"
		f := state(p)
		dropAll := func(path string) {
			for _, w := range ws {
				if _, err := w.Delete(context.Background(), connect.NewRequest(&cairnv1.DataServiceDeleteRequest{Path: path})); err != nil {
					t.Fatal(err)
				}
			}
		}
		read := func(path string) ([]byte, error) {
			var buf bytes.Buffer
			_, err := files.Get(context.Background(), path, &buf, client.GetOptions{NoShortCircuit: true})
			return buf.Bytes(), err
		}
		dropAll(p)
		if b, err := read(p); err != nil || !bytes.Equal(b, ckpt) {
			t.Fatalf("restore of a persisted cache-only file: %v", err)
		}
		eventually(t, 10*time.Second, "the restored copy to be cached", func() bool {
			return len(holders(t, ws, p, f.GetVersion())) > 0
		})
		ufsFile := filepath.Join(ufs, "archive/ckpt/step-1/model.bin")
		for _, damage := range []struct {
			name string
			do   func()
			want string
		}{
			{"truncated", func() { os.Truncate(ufsFile, 1000) }, "has 1000 bytes"},
			{"older", func() {
				os.WriteFile(ufsFile, ckpt, 0o644)
				old := f.GetUfsMtime().AsTime().Add(-time.Hour)
				os.Chtimes(ufsFile, old, old)
			}, "older copy"},
		} {
			dropAll(p)
			damage.do()
			if _, err := read(p); connect.CodeOf(err) != connect.CodeDataLoss || !strings.Contains(err.Error(), damage.want) {
				t.Fatalf("%s UFS copy: %v, want DataLoss saying %q", damage.name, err, damage.want)
			}
			if h := holders(t, ws, p, f.GetVersion()); len(h) != 0 {
				t.Fatalf("%s UFS copy was cached on %v", damage.name, h)
			}
		}
		// A cache-only file that was never persisted and lost every copy.
		dropAll("/cache-only/shuffle/part-0")
		if _, err := read("/cache-only/shuffle/part-0"); connect.CodeOf(err) != connect.CodeDataLoss || !strings.Contains(err.Error(), "never persisted") {
			t.Fatalf("a lost unpersisted file: %v", err)
		}
	})

	get := func() *cairnv1.UploadMapping {
		resp, err := jobCall(t, c, func(ctx context.Context, s client.Services) (*cairnv1.GetUploadMappingResponse, error) {
			r, err := s.Namespace.GetUploadMapping(ctx, connect.NewRequest(&cairnv1.GetUploadMappingRequest{}))
			if err != nil {
				return nil, err
			}
			return r.Msg, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetMapping()
	}
	before := get()
	if len(before.GetMappings()) != 1 || before.GetMappings()[0].GetUfsPath() != "/archive/ckpt" {
		t.Fatalf("mapping in force: %v", before)
	}
	for _, bad := range []struct{ json, want string }{
		{"{\n  \"cacheOnlyMountPoint\": \"/cache-only\",\n  \"blacklist\": []\n}", `line 3: unknown key "blacklist"`},
		{`{"cacheOnlyMountPoint": "/cache-only", "asyncUploadPathMapping": {"/elsewhere": "/u"}}`, "outside the mount point"},
		{`{"cacheOnlyMountPoint": "/cache-only", "asyncUploadPathMapping": {"/cache-only/x": "/../../etc"}}`, "inside the UFS root"},
		{`{"cacheOnlyMountPoint": "/other"}`, "the cache-only mount is /cache-only"},
	} {
		_, err := jobCall(t, c, func(ctx context.Context, s client.Services) (*cairnv1.SetUploadMappingResponse, error) {
			r, err := s.Namespace.SetUploadMapping(ctx, connect.NewRequest(&cairnv1.SetUploadMappingRequest{MappingJson: bad.json}))
			if err != nil {
				return nil, err
			}
			return r.Msg, nil
		})
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Fatalf("bad mapping %s: %v, want an error containing %q", bad.json, err, bad.want)
		}
	}
	if after := get(); !proto.Equal(after, before) {
		t.Fatalf("a refused mapping changed the one in force: %v", after)
	}
}
