package tests

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/cespare/xxhash/v2"

	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/placement"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

const testBlock = 64 << 10

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// workerClients maps worker ids to DataService clients, from the map.
func workerClients(t *testing.T, c *cluster) (map[string]cairnv1connect.DataServiceClient, *cairnv1.ClusterMap) {
	t.Helper()
	cm, err := c.clusterMap()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]cairnv1connect.DataServiceClient)
	for _, w := range cm.GetMap().GetWorkers() {
		out[w.GetId()] = cairnv1connect.NewDataServiceClient(httpClient, "http://"+w.GetAddress())
	}
	return out, cm.GetMap()
}

// holders returns the workers whose cache holds path at version.
func holders(t *testing.T, ws map[string]cairnv1connect.DataServiceClient, path string, version uint64) []string {
	t.Helper()
	var ids []string
	for id, w := range ws {
		r, err := w.Stat(context.Background(), connect.NewRequest(&cairnv1.StatRequest{Paths: []string{path}}))
		if err != nil {
			t.Fatalf("stat on %s: %v", id, err)
		}
		for _, f := range r.Msg.GetFiles() {
			if f.GetIdentity().GetVersion() == version {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// TestData: writes land on exactly their owners with the right checksum,
// read back byte-identical at block edges, and bad writes commit nothing.
func TestData(t *testing.T) {
	c := startCluster(t, 1, 3, "--block-size", fmt.Sprint(testBlock), "--capacity", "8MiB")
	ctx := context.Background()
	files := c.client().Files()
	if out, err := cairn(t, "cluster", "replication", "2", "--masters", c.addrs()); err != nil {
		t.Fatalf("replication 2: %v\n%s", err, out)
	}
	ws, cm := workerClients(t, c)
	pm, err := placement.FromClusterMap(cm)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("sizes around the block edge", func(t *testing.T) {
		for i, n := range []int{0, 1, testBlock - 1, testBlock, testBlock + 1, 3*testBlock + 5} {
			path := fmt.Sprintf("/sizes/f%d", n)
			data := randomBytes(n, uint64(i))
			f, err := files.Put(ctx, path, bytes.NewReader(data), int64(n), client.PutOptions{})
			if err != nil {
				t.Fatalf("put %d bytes: %v", n, err)
			}
			if f.GetChecksum() != xxhash.Sum64(data) || f.GetLength() != uint64(n) {
				t.Fatalf("put %d bytes: recorded %d bytes, checksum %x", n, f.GetLength(), f.GetChecksum())
			}
			var got bytes.Buffer
			if _, err := files.Get(ctx, path, &got, client.GetOptions{}); err != nil || !bytes.Equal(got.Bytes(), data) {
				t.Fatalf("read back %d bytes: %v (got %d bytes)", n, err, got.Len())
			}
			want := pm.OwnerIDs(path)
			have := holders(t, ws, path, f.GetVersion())
			if strings.Join(sorted(have), ",") != strings.Join(sorted(want), ",") {
				t.Fatalf("%s is on %v, its owners are %v", path, have, want)
			}
		}
	})

	t.Run("a checksum that does not match commits nothing", func(t *testing.T) {
		data := randomBytes(2*testBlock, 9)
		w := ws[cm.GetWorkers()[0].GetId()]
		st := w.Write(ctx)
		st.Send(&cairnv1.WriteRequest{Part: &cairnv1.WriteRequest_Header{Header: &cairnv1.WriteHeader{
			Identity: &cairnv1.FileIdentity{Path: "/bad", Version: 99, Length: uint64(len(data)), Checksum: xxhash.Sum64(data) ^ 1}}}})
		st.Send(&cairnv1.WriteRequest{Part: &cairnv1.WriteRequest_Chunk{Chunk: data}})
		if _, err := st.CloseAndReceive(); connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "checksum") {
			t.Fatalf("mismatched checksum: %v", err)
		}
		if h := holders(t, ws, "/bad", 99); len(h) != 0 {
			t.Fatalf("a refused write is cached on %v", h)
		}
	})

	t.Run("a pinned write larger than the free space is ResourceExhausted", func(t *testing.T) {
		id := cm.GetWorkers()[1].GetId()
		w := ws[id]
		data := randomBytes(9<<20, 3) // the cache holds 8 MiB
		st := w.Write(ctx)
		st.Send(&cairnv1.WriteRequest{Part: &cairnv1.WriteRequest_Header{Header: &cairnv1.WriteHeader{
			Identity: &cairnv1.FileIdentity{Path: "/pinned-big", Version: 100, Length: uint64(len(data)), Checksum: xxhash.Sum64(data)}, Pinned: true}}})
		for off := 0; off < len(data); off += 1 << 20 {
			if st.Send(&cairnv1.WriteRequest{Part: &cairnv1.WriteRequest_Chunk{Chunk: data[off:min(off+1<<20, len(data))]}}) != nil {
				break
			}
		}
		if _, err := st.CloseAndReceive(); connect.CodeOf(err) != connect.CodeResourceExhausted {
			t.Fatalf("pinned write over the free space: %v", err)
		}
		if h := holders(t, ws, "/pinned-big", 100); len(h) != 0 {
			t.Fatalf("the refused write is cached on %v", h)
		}
	})

	t.Run("transfer copies a cached copy to another worker once", func(t *testing.T) {
		f, err := files.Stat(ctx, fmt.Sprintf("/sizes/f%d", 3*testBlock+5))
		if err != nil {
			t.Fatal(err)
		}
		owners := pm.OwnerIDs(f.GetPath())
		var other string
		for _, w := range cm.GetWorkers() {
			if !slices.Contains(owners, w.GetId()) {
				other = w.GetId()
			}
		}
		var otherAddr string
		for _, w := range cm.GetWorkers() {
			if w.GetId() == other {
				otherAddr = w.GetAddress()
			}
		}
		for round, wantSent := range []bool{true, false} {
			r, err := ws[owners[0]].Transfer(ctx, connect.NewRequest(&cairnv1.TransferRequest{Path: f.GetPath(), Version: f.GetVersion(), TargetAddress: otherAddr}))
			if err != nil {
				t.Fatalf("transfer %d: %v", round, err)
			}
			if r.Msg.GetSent() != wantSent || r.Msg.GetFile().GetIdentity().GetChecksum() != f.GetChecksum() {
				t.Fatalf("transfer %d: sent %v (want %v), %v", round, r.Msg.GetSent(), wantSent, r.Msg.GetFile())
			}
		}
		if h := holders(t, ws, f.GetPath(), f.GetVersion()); len(h) != 3 {
			t.Fatalf("after the transfer the file is on %v", h)
		}
	})

	t.Run("missing paths and delete", func(t *testing.T) {
		if _, err := files.Get(ctx, "/nope", &bytes.Buffer{}, client.GetOptions{}); connect.CodeOf(err) != connect.CodeNotFound {
			t.Fatalf("reading a missing path: %v", err)
		}
		f, err := files.Stat(ctx, "/sizes/f1")
		if err != nil {
			t.Fatal(err)
		}
		if n, err := files.Delete(ctx, "/sizes", true); err != nil || n != 6 {
			t.Fatalf("delete: %d %v", n, err)
		}
		if h := holders(t, ws, "/sizes/f1", f.GetVersion()); len(h) != 0 {
			t.Fatalf("deleted file still cached on %v", h)
		}
		// The transferred copy sits on a worker that does not own the file:
		// delete reaches owners only; cleanup (a later issue) removes the rest.
	})
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }

// metric sums the samples of a Prometheus metric (any labels matching
// labelPart) on the process at addr.
func metric(t *testing.T, addr, name, labelPart string) float64 {
	t.Helper()
	resp, err := httpClient.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, name) || !strings.Contains(line, labelPart) {
			continue
		}
		rest := strings.TrimPrefix(line, name)
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue // another metric with this prefix
		}
		f := strings.Fields(rest)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// TestReadThroughUFS: a file placed in the UFS by hand reads through cairn,
// first as a miss, then as a hit; concurrent readers of a cold file cause
// one UFS read; --no-cache caches nothing.
func TestReadThroughUFS(t *testing.T) {
	c := startCluster(t, 1, 3, "--block-size", fmt.Sprint(testBlock))
	ctx := context.Background()
	files := c.client().Files()
	ufs := filepath.Join(c.masters[0].dir, "ufs")
	eventually(t, 10*time.Second, "the UFS mount", func() bool {
		r, err := c.client().Masters()[0].Namespace.ListMounts(ctx, connect.NewRequest(&cairnv1.ListMountsRequest{}))
		return err == nil && len(r.Msg.GetMounts()) == 1
	})
	place := func(p string, data []byte) {
		full := filepath.Join(ufs, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, cm := workerClients(t, c)
	addr := make(map[string]string)
	for _, w := range cm.GetWorkers() {
		addr[w.GetId()] = w.GetAddress()
	}
	pm, _ := placement.FromClusterMap(cm)
	total := func(name, label string) float64 {
		s := 0.0
		for _, a := range addr {
			s += metric(t, a, name, label)
		}
		return s
	}

	data := randomBytes(3*testBlock+11, 5)
	place("/hand/placed.bin", data)
	var got bytes.Buffer
	api := client.GetOptions{NoShortCircuit: true}
	f, err := files.Get(ctx, "/hand/placed.bin", &got, api)
	if err != nil || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("first read of a file placed in the UFS: %v", err)
	}
	if f.GetPersistenceState() != cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED {
		t.Fatalf("a loaded file is %v", f.GetPersistenceState())
	}
	owner := addr[pm.OwnerIDs("/hand/placed.bin")[0]]
	if m, u := metric(t, owner, "cairn_worker_reads_total", `outcome="miss"`), metric(t, owner, "cairn_worker_ufs_reads_total", ""); m != 1 || u != 1 {
		t.Fatalf("after the first read the owner counts %v misses and %v UFS reads, want 1 and 1", m, u)
	}
	got.Reset()
	if _, err := files.Get(ctx, "/hand/placed.bin", &got, api); err != nil || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("second read: %v", err)
	}
	if h, u := metric(t, owner, "cairn_worker_reads_total", `outcome="hit"`), metric(t, owner, "cairn_worker_ufs_reads_total", ""); h != 1 || u != 1 {
		t.Fatalf("after the second read the owner counts %v hits and %v UFS reads, want 1 and 1", h, u)
	}
	// A client on the worker's disk reads the block files directly: the
	// same bytes, and the worker serves nothing.
	served := metric(t, owner, "cairn_worker_read_bytes_total", "")
	got.Reset()
	if _, err := files.Get(ctx, "/hand/placed.bin", &got, client.GetOptions{}); err != nil || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("short-circuit read: %v", err)
	}
	if now := metric(t, owner, "cairn_worker_read_bytes_total", ""); now != served {
		t.Fatalf("a short-circuit read made the worker serve %v bytes", now-served)
	}

	cold := randomBytes(5*testBlock, 6)
	place("/hand/cold.bin", cold)
	before := total("cairn_worker_ufs_reads_total", "")
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b bytes.Buffer
			if _, err := files.Get(ctx, "/hand/cold.bin", &b, api); err != nil {
				errs <- err
			} else if !bytes.Equal(b.Bytes(), cold) {
				errs <- fmt.Errorf("a concurrent reader got different bytes")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := total("cairn_worker_ufs_reads_total", "") - before; n != 1 {
		t.Fatalf("32 concurrent readers of a cold file caused %v UFS reads, want 1", n)
	}

	// 32 concurrent partial readers of one block of a cold file, straight
	// at its owner: one UFS read, and each gets its bytes.
	part := randomBytes(4*testBlock, 8)
	place("/hand/partial.bin", part)
	lf, err := c.client().Masters()[0].Namespace.LoadFile(ctx, connect.NewRequest(&cairnv1.LoadFileRequest{Path: "/hand/partial.bin"}))
	if err != nil {
		t.Fatal(err)
	}
	pf := lf.Msg.GetFile()
	pOwner := cairnv1connect.NewDataServiceClient(httpClient, "http://"+addr[pm.OwnerIDs(pf.GetPath())[0]])
	before = total("cairn_worker_ufs_reads_total", "")
	errs = make(chan error, 32)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			off := uint64(testBlock + 7*i)
			st, err := pOwner.Read(ctx, connect.NewRequest(&cairnv1.ReadRequest{Path: pf.GetPath(), Version: pf.GetVersion(), Offset: off, Length: 100, UfsFallback: pf}))
			if err != nil {
				errs <- err
				return
			}
			var b []byte
			for st.Receive() {
				b = append(b, st.Msg().GetChunk()...)
			}
			if err := st.Err(); err != nil {
				errs <- err
			} else if !bytes.Equal(b, part[off:off+100]) {
				errs <- fmt.Errorf("partial reader %d got %d wrong bytes", i, len(b))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := total("cairn_worker_ufs_reads_total", "") - before; n != 1 {
		t.Fatalf("32 concurrent partial readers of a cold block caused %v UFS reads, want 1", n)
	}
	ws0, _ := workerClients(t, c)
	eventually(t, 10*time.Second, "the partially read file to be cached whole", func() bool {
		return len(holders(t, ws0, pf.GetPath(), pf.GetVersion())) == 1
	})

	place("/hand/nocache.bin", []byte("straight from the UFS"))
	got.Reset()
	nf, err := files.Get(ctx, "/hand/nocache.bin", &got, client.GetOptions{NoCache: true})
	if err != nil || got.String() != "straight from the UFS" {
		t.Fatalf("no-cache read: %v %q", err, got.String())
	}
	ws, _ := workerClients(t, c)
	if h := holders(t, ws, "/hand/nocache.bin", nf.GetVersion()); len(h) != 0 {
		t.Fatalf("a --no-cache read cached the file on %v", h)
	}

	for _, p := range []string{"/../etc/passwd", "/hand/../../x"} {
		if _, err := files.Get(ctx, p, &got, client.GetOptions{}); connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Errorf("read %q: %v, want InvalidArgument", p, err)
		}
	}
	if _, err := files.Get(ctx, "/hand/missing", &got, client.GetOptions{}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("a path in neither cairn nor the UFS: %v", err)
	}
}

// TestWriteTypes: each write type ends where it promises, with the
// checksum it was written with.
func TestWriteTypes(t *testing.T) {
	c := startClusterWith(t, 1, 3, []string{"--cache-only-mount", "/cache-only"}, []string{"--block-size", fmt.Sprint(testBlock)})
	ctx := context.Background()
	files := c.client().Files()
	ufs := filepath.Join(c.masters[0].dir, "ufs")
	eventually(t, 10*time.Second, "the UFS and cache-only mounts", func() bool {
		r, err := c.client().Masters()[0].Namespace.ListMounts(ctx, connect.NewRequest(&cairnv1.ListMountsRequest{}))
		return err == nil && len(r.Msg.GetMounts()) == 2
	})
	ws, _ := workerClients(t, c)
	t.Run("the cache-only mount", func(t *testing.T) {
		if out, err := cairn(t, "cluster", "replication", "2", "--masters", c.addrs()); err != nil {
			t.Fatalf("replication 2: %v\n%s", err, out)
		}
		defer cairn(t, "cluster", "replication", "1", "--masters", c.addrs())
		data := randomBytes(testBlock+3, 77)
		f, err := files.Put(ctx, "/cache-only/shuffle/part-0", bytes.NewReader(data), int64(len(data)), client.PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !f.GetPinned() {
			t.Fatal("a file under the cache-only mount is not pinned")
		}
		var pinnedOn int
		for _, w := range ws {
			r, err := w.Stat(ctx, connect.NewRequest(&cairnv1.StatRequest{Paths: []string{f.GetPath()}}))
			if err != nil {
				t.Fatal(err)
			}
			for _, cf := range r.Msg.GetFiles() {
				if cf.GetPinned() && cf.GetIdentity().GetVersion() == f.GetVersion() {
					pinnedOn++
				}
			}
		}
		if pinnedOn != 2 {
			t.Fatalf("pinned on %d workers, want R = 2", pinnedOn)
		}
		if _, err := os.Stat(filepath.Join(ufs, "cache-only")); err == nil {
			t.Fatal("a cache-only file reached the UFS")
		}
		_, err = files.Put(ctx, "/cache-only/x", bytes.NewReader(data), int64(len(data)), client.PutOptions{WriteType: cairnv1.WriteType_WRITE_TYPE_CACHE_THROUGH})
		if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "cache-only") {
			t.Fatalf("CACHE_THROUGH under the cache-only mount: %v", err)
		}
	})
	cases := []struct {
		wt          cairnv1.WriteType
		inCache     bool
		inUFS       bool
		persistence cairnv1.PersistenceState
	}{
		{cairnv1.WriteType_WRITE_TYPE_MUST_CACHE, true, false, cairnv1.PersistenceState_PERSISTENCE_STATE_NOT_PERSISTED},
		{cairnv1.WriteType_WRITE_TYPE_CACHE_THROUGH, true, true, cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED},
		{cairnv1.WriteType_WRITE_TYPE_THROUGH, false, true, cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED},
		{cairnv1.WriteType_WRITE_TYPE_ASYNC_THROUGH, true, false, cairnv1.PersistenceState_PERSISTENCE_STATE_TO_BE_PERSISTED},
	}
	for i, tc := range cases {
		t.Run(tc.wt.String(), func(t *testing.T) {
			path := "/types/" + tc.wt.String()
			data := randomBytes(2*testBlock+i, uint64(100+i))
			f, err := files.Put(ctx, path, bytes.NewReader(data), int64(len(data)), client.PutOptions{WriteType: tc.wt})
			if err != nil {
				t.Fatal(err)
			}
			if f.GetChecksum() != xxhash.Sum64(data) || f.GetPersistenceState() != tc.persistence {
				t.Fatalf("recorded checksum %x (want %x), persistence %v (want %v)", f.GetChecksum(), xxhash.Sum64(data), f.GetPersistenceState(), tc.persistence)
			}
			if tc.inUFS != (f.GetUfsMtime() != nil) {
				t.Fatalf("ufs_mtime %v for a write that reached the UFS: %v", f.GetUfsMtime(), tc.inUFS)
			}
			onDisk, err := os.ReadFile(filepath.Join(ufs, "types", tc.wt.String()))
			switch {
			case tc.inUFS && (err != nil || xxhash.Sum64(onDisk) != xxhash.Sum64(data)):
				t.Fatalf("the UFS copy: %v (%d bytes)", err, len(onDisk))
			case !tc.inUFS && err == nil:
				t.Fatal("the write reached the UFS")
			}
			if got := len(holders(t, ws, path, f.GetVersion())); (got > 0) != tc.inCache {
				t.Fatalf("cached on %d workers; want cached: %v", got, tc.inCache)
			}
			var back bytes.Buffer
			if _, err := files.Get(ctx, path, &back, client.GetOptions{}); err != nil || !bytes.Equal(back.Bytes(), data) {
				t.Fatalf("read back: %v", err)
			}
		})
	}
}

// TestLargeFile: 100 MiB written with R = 2 reads back byte-identical,
// through the API and short-circuit alike.
func TestLargeFile(t *testing.T) {
	c := startCluster(t, 1, 3)
	ctx := context.Background()
	if out, err := cairn(t, "cluster", "replication", "2", "--masters", c.addrs()); err != nil {
		t.Fatalf("replication 2: %v\n%s", err, out)
	}
	files := c.client().Files()
	data := randomBytes(100<<20, 42)
	f, err := files.Put(ctx, "/large/100MiB", bytes.NewReader(data), int64(len(data)), client.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if f.GetChecksum() != xxhash.Sum64(data) {
		t.Fatal("recorded checksum differs")
	}
	for _, o := range []client.GetOptions{{NoShortCircuit: true}, {}} {
		var got bytes.Buffer
		if _, err := files.Get(ctx, "/large/100MiB", &got, o); err != nil || !bytes.Equal(got.Bytes(), data) {
			t.Fatalf("read back with %+v: %v (%d bytes)", o, err, got.Len())
		}
	}
}

// TestWriteTimeout: a write created and never completed (its client died)
// is abandoned by the leader after --write-timeout; a write completed in
// time is not touched.
func TestWriteTimeout(t *testing.T) {
	c := startClusterWith(t, 1, 0, []string{"--write-timeout", "3s"}, nil)
	ns := c.client().Masters()[0].Namespace
	ctx := context.Background()
	create := func(p string) uint64 {
		t.Helper()
		r, err := ns.CreateFile(ctx, connect.NewRequest(&cairnv1.CreateFileRequest{Path: p, WriteType: cairnv1.WriteType_WRITE_TYPE_MUST_CACHE}))
		if err != nil {
			t.Fatalf("create %s: %v", p, err)
		}
		return r.Msg.GetWrite().GetVersion()
	}
	complete := func(p string, v uint64) error {
		_, err := ns.CompleteFile(ctx, connect.NewRequest(&cairnv1.CompleteFileRequest{Path: p, Version: v}))
		return err
	}
	left := create("/wt/left")
	if err := complete("/wt/done", create("/wt/done")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the leader to abandon the write left incomplete", func() bool {
		return metric(t, c.leader().api, "cairn_writes_abandoned_total", "") == 1
	})
	if err := complete("/wt/left", left); connect.CodeOf(err) != connect.CodeFailedPrecondition {
		t.Fatalf("complete the abandoned write: %v, want FailedPrecondition", err)
	}
	if _, err := ns.GetFile(ctx, connect.NewRequest(&cairnv1.GetFileRequest{Path: "/wt/done"})); err != nil {
		t.Fatalf("the write completed in time: %v", err)
	}
	// The path is free for a new write.
	if err := complete("/wt/left", create("/wt/left")); err != nil {
		t.Fatalf("write the path again: %v", err)
	}
}
