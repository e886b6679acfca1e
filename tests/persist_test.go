package tests

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/cespare/xxhash/v2"

	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/placement"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// TestAsyncPersist: ASYNC_THROUGH files reach the UFS by themselves through
// PERSIST jobs, with the same bytes; the journal records PERSISTED, the UFS
// modification time and the uploaded bytes; a file deleted before its
// upload never reaches the UFS; cairn fs persist uploads a MUST_CACHE file.
func TestAsyncPersist(t *testing.T) {
	c := startClusterWith(t, 1, 3, []string{"--persist-interval", "200ms", "--lease-ttl", "2s"}, nil)
	if out, err := cairn(t, "cluster", "replication", "2", "--masters", c.addrs()); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	mapWith(t, c, 3)
	ufs := filepath.Join(c.masters[0].dir, "ufs")
	files := c.client().Files()
	sums := map[string]uint64{}
	for i := range 20 {
		p, data := fmt.Sprintf("/async/f%02d", i), randomBytes(1000+i*50000, uint64(i))
		if _, err := files.Put(context.Background(), p, bytes.NewReader(data), int64(len(data)), client.PutOptions{WriteType: cairnv1.WriteType_WRITE_TYPE_ASYNC_THROUGH}); err != nil {
			t.Fatal(err)
		}
		sums[p] = xxhash.Sum64(data)
	}
	stat := func(p string) *cairnv1.File {
		f, err := files.Stat(context.Background(), p)
		if err != nil {
			t.Fatalf("stat %s: %v", p, err)
		}
		return f
	}
	eventually(t, time.Minute, "every ASYNC_THROUGH file to be PERSISTED", func() bool {
		for p := range sums {
			if stat(p).GetPersistenceState() != cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED {
				return false
			}
		}
		return true
	})
	var total uint64
	for p, sum := range sums {
		b, err := os.ReadFile(filepath.Join(ufs, p))
		if err != nil || xxhash.Sum64(b) != sum {
			t.Fatalf("%s in the UFS: %v (checksum %x, want %x)", p, err, xxhash.Sum64(b), sum)
		}
		f := stat(p)
		info, _ := os.Stat(filepath.Join(ufs, p))
		if f.GetUfsMtime() == nil || !f.GetUfsMtime().AsTime().Equal(info.ModTime()) {
			t.Fatalf("%s: journal's UFS mtime %v, the file's %v", p, f.GetUfsMtime().AsTime(), info.ModTime())
		}
		total += uint64(len(b))
	}
	resp, err := listJobs(t, c, &cairnv1.ListJobsRequest{Kind: cairnv1.JobKind_JOB_KIND_PERSIST, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var uploaded uint64
	for _, j := range resp.GetJobs() {
		uploaded += j.GetCounters().GetUploadedBytes()
	}
	if uploaded != total {
		t.Fatalf("the journal counts %d uploaded bytes, the UFS holds %d", uploaded, total)
	}
	out, err := cairn(t, "fs", "stat", "/async/f03", "--masters", c.addrs())
	if err != nil || !strings.Contains(out, "PERSISTED") {
		t.Fatalf("fs stat: %v\n%s", err, out)
	}
	// Every replica becomes evictable, not only the uploader's copy.
	ws, _ := workerClients(t, c)
	paths := slices.Sorted(maps.Keys(sums))
	eventually(t, time.Minute, "every replica of every uploaded file to be marked persisted", func() bool {
		copies := 0
		for _, w := range ws {
			resp, err := w.Stat(context.Background(), connect.NewRequest(&cairnv1.StatRequest{Paths: paths}))
			if err != nil {
				return false
			}
			for _, cf := range resp.Msg.GetFiles() {
				if cf.GetUnpersisted() {
					return false
				}
				copies++
			}
		}
		return copies == 2*len(paths)
	})

	t.Run("a cached copy that cannot be read falls back to the UFS", func(t *testing.T) {
		p := "/async/f10"
		f := stat(p)
		ws, _ := workerClients(t, c)
		damaged := 0
		for _, w := range ws {
			resp, err := w.Stat(context.Background(), connect.NewRequest(&cairnv1.StatRequest{Paths: []string{p}}))
			if err != nil {
				t.Fatal(err)
			}
			for _, cf := range resp.Msg.GetFiles() {
				if err := os.Truncate(filepath.Join(cf.GetLocalDir(), "0"), 10); err != nil {
					t.Fatal(err)
				}
				damaged++
			}
		}
		if damaged == 0 {
			t.Fatalf("no cached copy of %s to damage", p)
		}
		var buf bytes.Buffer
		if _, err := files.Get(context.Background(), p, &buf, client.GetOptions{NoShortCircuit: true, NoRawRead: true}); err != nil || xxhash.Sum64(buf.Bytes()) != sums[p] {
			t.Fatalf("read of %s with damaged cached copies: %v (%d of %d bytes)", p, err, buf.Len(), f.GetLength())
		}
		cm := mapWith(t, c, 3)
		fallbacks := 0.0
		for _, w := range cm.GetWorkers() {
			fallbacks += metric(t, w.GetAddress(), "cairn_worker_reads_total", `outcome="cache_error"`)
		}
		if fallbacks == 0 {
			t.Fatal("the read did not go through the cache-error fallback")
		}
	})

	t.Run("a write to an owner that stopped answering ends", func(t *testing.T) {
		cm := mapWith(t, c, 3)
		pm, err := placement.FromClusterMap(cm)
		if err != nil {
			t.Fatal(err)
		}
		w := c.workers[0]
		p := ""
		for i := 0; p == ""; i++ {
			if q := fmt.Sprintf("/stall/f%d", i); pm.IsOwner(w.name, q) {
				p = q
			}
		}
		w.signal(t, syscall.SIGSTOP)
		defer w.signal(t, syscall.SIGCONT)
		data := randomBytes(8<<20, 5)
		start := time.Now()
		_, err = files.Put(context.Background(), p, bytes.NewReader(data), int64(len(data)), client.PutOptions{StallTimeout: 2 * time.Second})
		if connect.CodeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), "made no progress") {
			t.Fatalf("write to a stopped owner: %v", err)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Fatalf("the stalled write took %s to end", d)
		}
	})

	t.Run("a read from an owner that stopped answering goes on from the next", func(t *testing.T) {
		cm := mapWith(t, c, 3)
		pm, err := placement.FromClusterMap(cm)
		if err != nil {
			t.Fatal(err)
		}
		w := c.workers[1]
		p := ""
		for i := 0; p == ""; i++ {
			if q := fmt.Sprintf("/stall/read%d", i); pm.OwnerIDs(q)[0] == w.name {
				p = q
			}
		}
		data := randomBytes(12<<20, 6)
		if _, err := files.Put(context.Background(), p, bytes.NewReader(data), int64(len(data)), client.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		w.signal(t, syscall.SIGSTOP)
		defer w.signal(t, syscall.SIGCONT)
		start := time.Now()
		var got bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a hung read fails the test, not the run
		defer cancel()
		if _, err := files.Get(ctx, p, &got, client.GetOptions{StallTimeout: time.Second}); err != nil || !bytes.Equal(got.Bytes(), data) {
			t.Fatalf("read with the primary owner stopped: %v (%d bytes of %d)", err, got.Len(), len(data))
		}
		if d := time.Since(start); d > 20*time.Second || d < time.Second {
			// Say what the read saw, to tell a placement change from a
			// worker that answered while stopped (this failed once, in 149 ms).
			now, err := c.clusterMap()
			var owners []string
			if err == nil {
				if npm, err := placement.FromClusterMap(now.GetMap()); err == nil {
					owners = npm.OwnerIDs(p)
				}
			}
			t.Fatalf("the read took %s; want about the 1s stall timeout and the rest from the other owner (stopped %s chosen at epoch %d; now epoch %d, owners %v, map error %v)",
				d, w.name, cm.GetEpoch(), now.GetMap().GetEpoch(), owners, err)
		}
	})

	t.Run("fs persist uploads a MUST_CACHE file", func(t *testing.T) {
		data := randomBytes(5000, 99)
		if _, err := files.Put(context.Background(), "/mc/f", bytes.NewReader(data), int64(len(data)), client.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		if f := stat("/mc/f"); f.GetPersistenceState() != cairnv1.PersistenceState_PERSISTENCE_STATE_NOT_PERSISTED {
			t.Fatalf("a MUST_CACHE file is %v", f.GetPersistenceState())
		}
		if _, err := os.Stat(filepath.Join(ufs, "/mc/f")); !os.IsNotExist(err) {
			t.Fatalf("a MUST_CACHE file is in the UFS: %v", err)
		}
		if out, err := cairn(t, "fs", "persist", "/mc/f", "--masters", c.addrs()); err != nil {
			t.Fatalf("fs persist: %v\n%s", err, out)
		}
		eventually(t, 30*time.Second, "/mc/f to be PERSISTED", func() bool {
			return stat("/mc/f").GetPersistenceState() == cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED
		})
		if b, err := os.ReadFile(filepath.Join(ufs, "/mc/f")); err != nil || !bytes.Equal(b, data) {
			t.Fatalf("/mc/f in the UFS: %v", err)
		}
	})

	t.Run("a deleted file does not come back from the UFS", func(t *testing.T) {
		p := "/async/f05"
		if _, err := files.Delete(context.Background(), p, false); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "the UFS copy of the deleted file to go", func() bool {
			_, err := os.Stat(filepath.Join(ufs, p))
			return os.IsNotExist(err)
		})
		var buf bytes.Buffer
		if _, err := files.Get(context.Background(), p, &buf, client.GetOptions{}); connect.CodeOf(err) != connect.CodeNotFound {
			t.Fatalf("read of a deleted file: %v (%d bytes)", err, buf.Len())
		}
	})

	// uploading waits for an upload of path to be leased and returns the
	// worker that holds it, paused if asked: the upload is in flight in the
	// journal's eyes.
	uploading := func(t *testing.T, path string, version uint64, pause bool) *proc {
		t.Helper()
		var who string
		eventually(t, 30*time.Second, fmt.Sprintf("an upload of %s@%d to be leased", path, version), func() bool {
			resp, err := listJobs(t, c, &cairnv1.ListJobsRequest{Kind: cairnv1.JobKind_JOB_KIND_PERSIST, PageSize: 5})
			if err != nil {
				return false
			}
			for _, j := range resp.GetJobs() {
				if j.GetSpec().GetPath() != path || j.GetSpec().GetVersion() != version {
					continue
				}
				for _, tk := range getJob(t, c, j.GetId()).GetTasks() {
					if tk.GetState() == cairnv1.TaskState_TASK_STATE_LEASED {
						who = tk.GetLeaseWorker()
						return true
					}
				}
			}
			return false
		})
		for _, w := range c.workers {
			if w.name == who {
				if pause {
					w.signal(t, syscall.SIGSTOP)
				}
				return w
			}
		}
		t.Fatalf("no worker %s", who)
		return nil
	}

	t.Run("an overwrite during an upload: the UFS ends with the newest version", func(t *testing.T) {
		// The uploading worker owns the file, so the overwrite writes to it
		// too: it keeps running, and the overwrite lands while it uploads
		// 64 MiB (or just after; the UFS must end with the newest either way).
		v1, v2 := randomBytes(64<<20, 11), randomBytes(1<<20, 12)
		f1, err := files.Put(context.Background(), "/async/over", bytes.NewReader(v1), int64(len(v1)), client.PutOptions{WriteType: cairnv1.WriteType_WRITE_TYPE_ASYNC_THROUGH})
		if err != nil {
			t.Fatal(err)
		}
		uploading(t, "/async/over", f1.GetVersion(), false)
		f2, err := files.Put(context.Background(), "/async/over", bytes.NewReader(v2), int64(len(v2)), client.PutOptions{WriteType: cairnv1.WriteType_WRITE_TYPE_ASYNC_THROUGH, Overwrite: true})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "the newest version to be PERSISTED", func() bool {
			f := stat("/async/over")
			return f.GetVersion() == f2.GetVersion() && f.GetPersistenceState() == cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED
		})
		if b, err := os.ReadFile(filepath.Join(ufs, "/async/over")); err != nil || !bytes.Equal(b, v2) {
			t.Fatalf("the UFS holds %d bytes (err %v), not the newest version's %d", len(b), err, len(v2))
		}
	})

	t.Run("a delete during an upload: no copy is left in the UFS", func(t *testing.T) {
		// Large enough that the upload is still leased when the test,
		// polling every 20 ms, looks: 24 MiB sometimes finished in between,
		// and the test then waited in vain for a lease.
		data := randomBytes(96<<20, 13)
		f, err := files.Put(context.Background(), "/async/del", bytes.NewReader(data), int64(len(data)), client.PutOptions{WriteType: cairnv1.WriteType_WRITE_TYPE_ASYNC_THROUGH})
		if err != nil {
			t.Fatal(err)
		}
		w := uploading(t, "/async/del", f.GetVersion(), true)
		// The namespace's delete alone: the paused worker cannot answer a
		// cache delete.
		if _, err := jobCall(t, c, func(ctx context.Context, s client.Services) (*cairnv1.DeleteFileResponse, error) {
			r, err := s.Namespace.DeleteFile(ctx, connect.NewRequest(&cairnv1.DeleteFileRequest{Path: "/async/del"}))
			if err != nil {
				return nil, err
			}
			return r.Msg, nil
		}); err != nil {
			t.Fatal(err)
		}
		w.signal(t, syscall.SIGCONT)
		// The cancelled upload's lease ends within its TTL; then whatever it
		// left is removed.
		eventually(t, 30*time.Second, "the UFS copy of /async/del to be dealt with", func() bool {
			return ufsCopyRemoved(t, c, "/async/del")
		})
		if _, err := os.Stat(filepath.Join(ufs, "/async/del")); !os.IsNotExist(err) {
			t.Fatalf("a file deleted during its upload is in the UFS: %v", err)
		}
	})

	t.Run("a worker killed mid-upload: another owner uploads", func(t *testing.T) {
		data := randomBytes(256<<20, 21)
		f, err := files.Put(context.Background(), "/async/big", bytes.NewReader(data), int64(len(data)), client.PutOptions{WriteType: cairnv1.WriteType_WRITE_TYPE_ASYNC_THROUGH})
		if err != nil {
			t.Fatal(err)
		}
		w := uploading(t, "/async/big", f.GetVersion(), true)
		w.kill()
		eventually(t, time.Minute, "/async/big to be PERSISTED", func() bool {
			return stat("/async/big").GetPersistenceState() == cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED
		})
		if b, err := os.ReadFile(filepath.Join(ufs, "/async/big")); err != nil || xxhash.Sum64(b) != xxhash.Sum64(data) {
			t.Fatalf("/async/big in the UFS: %v", err)
		}
		var job *cairnv1.GetJobResponse
		resp, err := listJobs(t, c, &cairnv1.ListJobsRequest{Kind: cairnv1.JobKind_JOB_KIND_PERSIST, PageSize: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range resp.GetJobs() {
			if j.GetSpec().GetPath() == "/async/big" {
				job = getJob(t, c, j.GetId())
				break
			}
		}
		tk := job.GetTasks()[0]
		// Counted once, by another worker, on a later attempt.
		if tk.GetAttempt() < 2 || tk.GetLeaseWorker() == w.name || job.GetJob().GetCounters().GetUploadedBytes() != uint64(len(data)) {
			t.Fatalf("upload after %s was killed: %v", w.name, job)
		}
		w.restart(t)
	})

	t.Run("a file deleted before its upload never reaches the UFS", func(t *testing.T) {
		// Uploads wait while every owner is paused; the delete comes first.
		data := randomBytes(3000, 7)
		f, err := files.Put(context.Background(), "/async/gone", bytes.NewReader(data), int64(len(data)), client.PutOptions{WriteType: cairnv1.WriteType_WRITE_TYPE_ASYNC_THROUGH})
		if err != nil {
			t.Fatal(err)
		}
		_ = f
		if _, err := files.Delete(context.Background(), "/async/gone", false); err != nil {
			t.Fatal(err)
		}
		// Whatever upload was scheduled in between was cancelled: no job for
		// the path may end SUCCEEDED, and the UFS has no file there.
		eventually(t, 30*time.Second, "no running upload of /async/gone", func() bool {
			resp, err := listJobs(t, c, &cairnv1.ListJobsRequest{Kind: cairnv1.JobKind_JOB_KIND_PERSIST, PageSize: 1000})
			if err != nil {
				return false
			}
			for _, j := range resp.GetJobs() {
				if j.GetSpec().GetPath() == "/async/gone" && j.GetState() == cairnv1.JobState_JOB_STATE_RUNNING {
					return false
				}
			}
			return true
		})
		if _, err := os.Stat(filepath.Join(ufs, "/async/gone")); !os.IsNotExist(err) {
			t.Fatalf("a deleted file reached the UFS: %v", err)
		}
	})
}

// ufsCopyRemoved reports whether the journal records that the UFS copy of
// the deleted path was dealt with (UfsCopyRemoved).
func ufsCopyRemoved(t *testing.T, c *cluster, path string) bool {
	t.Helper()
	out, err := cairn(t, "events", "tail", "--from", "1", "--no-follow", "--json", "--masters", c.addrs())
	if err != nil {
		t.Fatalf("events tail: %v\n%s", err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "ufs_copy_removed") && strings.Contains(line, `"`+path+`"`) {
			return true
		}
	}
	return false
}

// TestPersistFailover: the leader is killed while uploads run; every file
// ends PERSISTED, and the journal's uploaded-bytes total equals the bytes in
// the UFS.
func TestPersistFailover(t *testing.T) {
	ufs := t.TempDir() // one UFS for every master, as in production
	c := startClusterWith(t, 3, 3, []string{"--ufs", ufs, "--persist-interval", "100ms", "--heartbeat-timeout", "30s"}, nil)
	files := c.client().Files()
	sums := map[string]uint64{}
	for i := range 30 {
		p, data := fmt.Sprintf("/fo/f%02d", i), randomBytes(2<<20+i, uint64(i))
		if _, err := files.Put(context.Background(), p, bytes.NewReader(data), int64(len(data)), client.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		sums[p] = xxhash.Sum64(data)
	}
	// Every upload is asked for at once, and the leader dies right after.
	cli := c.client()
	var wg sync.WaitGroup
	for p := range sums {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := client.Msg(context.Background(), cli, func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.PersistFileResponse], error) {
				return s.Namespace.PersistFile(ctx, connect.NewRequest(&cairnv1.PersistFileRequest{Path: p}))
			}); err != nil {
				t.Errorf("persist %s: %v", p, err)
			}
		}()
	}
	wg.Wait()
	waiting := 0
	for p := range sums {
		if f, err := files.Stat(context.Background(), p); err == nil && f.GetPersistenceState() != cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED {
			waiting++
		}
	}
	old := c.leader()
	old.kill()
	t.Logf("killed leader %s with %d of %d uploads not done", old.id, waiting, len(sums))
	eventually(t, 2*time.Minute, "every file PERSISTED under the new leader", func() bool {
		for p := range sums {
			f, err := files.Stat(context.Background(), p)
			if err != nil || f.GetPersistenceState() != cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED {
				return false
			}
		}
		return true
	})
	var inUFS uint64
	for p, sum := range sums {
		b, err := os.ReadFile(filepath.Join(ufs, p))
		if err != nil || xxhash.Sum64(b) != sum {
			t.Fatalf("%s in the UFS: %v", p, err)
		}
		inUFS += uint64(len(b))
	}
	resp, err := listJobs(t, c, &cairnv1.ListJobsRequest{Kind: cairnv1.JobKind_JOB_KIND_PERSIST, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var uploaded uint64
	for _, j := range resp.GetJobs() {
		uploaded += j.GetCounters().GetUploadedBytes()
	}
	if uploaded != inUFS {
		t.Fatalf("the journal counts %d uploaded bytes, the UFS holds %d", uploaded, inUFS)
	}
	old.restart(t)
	old.waitUp(t)
}
