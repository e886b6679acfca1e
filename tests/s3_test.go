package tests

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/cespare/xxhash/v2"

	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/persistence"
	"github.com/cairnhq/cairn/persistence/s3test"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// The tests here run a real S3 server (versitygw, a process of its own over
// a temporary folder) beside real cairn processes. Credentials reach every
// cairn process through the standard AWS environment variables, which the
// tests set in their own environment for the processes to inherit, so they
// are not parallel.

// s3Bucket is the bucket the tests mount, and s3Prefix the prefix in it.
const (
	s3Bucket = "cairn"
	s3Prefix = "data"
)

// mountS3 mounts s3://cairn/data at path with the server's endpoint.
func mountS3(t *testing.T, c *cluster, srv *s3test.Server, path, uri string) (string, error) {
	t.Helper()
	return cairn(t, "mount", "add", path, uri, "--option", "endpoint="+srv.Endpoint, "--option", "path_style=true",
		"--option", "part_size_mib=5", "--masters", c.addrs())
}

// bucketFile is where versitygw keeps an object of the mounted prefix.
func bucketFile(srv *s3test.Server, rel string) string {
	return filepath.Join(srv.Dir, s3Bucket, s3Prefix, rel)
}

// s3Store opens the mounted prefix the way another program would.
func s3Store(t *testing.T, srv *s3test.Server) *persistence.S3 {
	t.Helper()
	spec, err := persistence.ParseURI("s3://"+s3Bucket+"/"+s3Prefix, map[string]string{"endpoint": srv.Endpoint, "path_style": "true"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := persistence.NewS3(context.Background(), spec, persistence.S3Config{Label: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// leasedTo waits until an upload of path@version is leased and returns
// the worker holding it.
func leasedTo(t *testing.T, c *cluster, path string, version uint64) *proc {
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
			return w
		}
	}
	t.Fatalf("no worker %s", who)
	return nil
}

// TestS3Mount: with a bucket mounted at /s3, every write type ends where it
// promises with the same bytes in the bucket; an object another program
// put there reads through cairn (a miss, then a hit); the seed's mapping
// example uploads /cache-only/a/... to the bucket and restores from it;
// a worker killed mid-upload leaves no partial object and another owner
// finishes; a delete or an overwrite during an upload leaves the right
// object, or none; unmount is refused while it would lose data.
func TestS3Mount(t *testing.T) {
	srv := s3test.Start(t)
	srv.Setenv(t)
	srv.Bucket(t, s3Bucket)
	mapping := filepath.Join(t.TempDir(), "mapping.json")
	if err := os.WriteFile(mapping, []byte(`{"cacheOnlyMountPoint": "/cache-only", "asyncUploadPathMapping": {"/cache-only/a": "/s3/a"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	c := startClusterWith(t, 1, 3, []string{"--persist-interval", "200ms", "--lease-ttl", "2s",
		"--cache-only-mount", "/cache-only", "--cache-only-replication", "2", "--async-upload-mapping", mapping}, nil)
	if out, err := cairn(t, "cluster", "replication", "2", "--masters", c.addrs()); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, err := mountS3(t, c, srv, "/s3", "s3://"+s3Bucket+"/"+s3Prefix); err != nil || !strings.Contains(out, "mounted s3://cairn/data at /s3") {
		t.Fatalf("mount add: %v\n%s", err, out)
	}
	out, err := cairn(t, "mount", "ls", "--masters", c.addrs())
	if err != nil || !strings.Contains(out, "/s3") || !strings.Contains(out, "s3://cairn/data") || !strings.Contains(out, "path_style=true") || !strings.Contains(out, "/cache-only") {
		t.Fatalf("mount ls: %v\n%s", err, out)
	}
	store := s3Store(t, srv)
	files := c.client().Files()
	ctx := context.Background()
	stat := func(p string) *cairnv1.File {
		t.Helper()
		f, err := files.Stat(ctx, p)
		if err != nil {
			t.Fatalf("stat %s: %v", p, err)
		}
		return f
	}
	inBucket := func(rel string) []byte {
		t.Helper()
		b, err := os.ReadFile(bucketFile(srv, rel))
		if err != nil {
			return nil
		}
		return b
	}
	put := func(p string, data []byte, o client.PutOptions) *cairnv1.File {
		t.Helper()
		f, err := files.Put(ctx, p, bytes.NewReader(data), int64(len(data)), o)
		if err != nil {
			t.Fatalf("put %s: %v", p, err)
		}
		return f
	}
	ws, _ := workerClients(t, c)

	t.Run("every write type under the mount ends where it promises", func(t *testing.T) {
		must, ct, thr, async, big := randomBytes(5000, 1), randomBytes(300_000, 2), randomBytes(70_000, 3), randomBytes(1<<20, 4), randomBytes(12<<20+5, 5)
		put("/s3/wt/must", must, client.PutOptions{})
		fct := put("/s3/wt/ct", ct, client.PutOptions{WriteType: cairnv1.WriteType_WRITE_TYPE_CACHE_THROUGH})
		put("/s3/wt/through", thr, client.PutOptions{WriteType: cairnv1.WriteType_WRITE_TYPE_THROUGH})
		put("/s3/wt/async", async, client.PutOptions{WriteType: cairnv1.WriteType_WRITE_TYPE_ASYNC_THROUGH})
		fbig := put("/s3/wt/multipart", big, client.PutOptions{WriteType: cairnv1.WriteType_WRITE_TYPE_CACHE_THROUGH, Parallel: 3, PartSize: 4 << 20})
		if inBucket("wt/must") != nil {
			t.Fatal("a MUST_CACHE file reached the bucket")
		}
		for rel, want := range map[string][]byte{"wt/ct": ct, "wt/through": thr, "wt/multipart": big} {
			if got := inBucket(rel); !bytes.Equal(got, want) {
				t.Fatalf("%s in the bucket: %d bytes, want %d", rel, len(got), len(want))
			}
		}
		obj, err := store.Stat(ctx, "/wt/ct")
		if err != nil || fct.GetUfsEtag() == "" || fct.GetUfsEtag() != obj.ETag || fct.GetPersistenceState() != cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED {
			t.Fatalf("CACHE_THROUGH: the journal records ETag %q, the object has %q (%v); %s", fct.GetUfsEtag(), obj.ETag, err, fct.GetPersistenceState())
		}
		if len(holders(t, ws, "/s3/wt/ct", fct.GetVersion())) != 2 || len(holders(t, ws, "/s3/wt/through", stat("/s3/wt/through").GetVersion())) != 0 {
			t.Fatal("CACHE_THROUGH must be cached on both owners, THROUGH on none")
		}
		if o, _ := store.Stat(ctx, "/wt/multipart"); !strings.Contains(fbig.GetUfsEtag(), "-") || fbig.GetUfsEtag() != o.ETag {
			t.Fatalf("a 12 MiB CACHE_THROUGH went up as %q (object %q), not as a multipart upload", fbig.GetUfsEtag(), o.ETag)
		}
		eventually(t, 30*time.Second, "the ASYNC_THROUGH file to be PERSISTED", func() bool {
			return stat("/s3/wt/async").GetPersistenceState() == cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED
		})
		if got := inBucket("wt/async"); !bytes.Equal(got, async) {
			t.Fatalf("the ASYNC_THROUGH file in the bucket: %d bytes", len(got))
		}
		if o, _ := store.Stat(ctx, "/wt/async"); stat("/s3/wt/async").GetUfsEtag() != o.ETag {
			t.Fatalf("the upload recorded ETag %q, the object has %q", stat("/s3/wt/async").GetUfsEtag(), o.ETag)
		}
		for _, p := range []string{"/s3/wt/ct", "/s3/wt/through", "/s3/wt/async", "/s3/wt/multipart"} {
			var buf bytes.Buffer
			if _, err := files.Get(ctx, p, &buf, client.GetOptions{NoShortCircuit: true}); err != nil {
				t.Fatalf("read %s back: %v", p, err)
			}
		}
	})

	t.Run("an object another program put in the bucket reads through: a miss, then a hit", func(t *testing.T) {
		data := randomBytes(3<<20+17, 6)
		os.MkdirAll(filepath.Dir(bucketFile(srv, "ext/obj.bin")), 0o755)
		if err := os.WriteFile(bucketFile(srv, "ext/obj.bin"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		misses := func() (n float64) {
			for _, w := range mapWith(t, c, 3).GetWorkers() {
				n += metric(t, w.GetAddress(), "cairn_worker_reads_total", `outcome="miss"`)
			}
			return n
		}
		hits := func() (n float64) {
			for _, w := range mapWith(t, c, 3).GetWorkers() {
				n += metric(t, w.GetAddress(), "cairn_worker_reads_total", `outcome="hit"`)
			}
			return n
		}
		m0, h0 := misses(), hits()
		var buf bytes.Buffer
		f, err := files.Get(ctx, "/s3/ext/obj.bin", &buf, client.GetOptions{NoShortCircuit: true, NoRawRead: true})
		if err != nil || !bytes.Equal(buf.Bytes(), data) {
			t.Fatalf("first read: %v (%d bytes)", err, buf.Len())
		}
		if f.GetPersistenceState() != cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED || f.GetUfsEtag() != f.GetEtag() {
			t.Fatalf("loaded as %v", f)
		}
		if misses() <= m0 {
			t.Fatal("the first read was not a miss")
		}
		eventually(t, 10*time.Second, "the object to be cached", func() bool { return len(holders(t, ws, f.GetPath(), f.GetVersion())) > 0 })
		buf.Reset()
		if _, err := files.Get(ctx, "/s3/ext/obj.bin", &buf, client.GetOptions{NoShortCircuit: true, NoRawRead: true}); err != nil || !bytes.Equal(buf.Bytes(), data) {
			t.Fatalf("second read: %v", err)
		}
		if hits() <= h0 {
			t.Fatal("the second read was not a hit")
		}
		// --no-cache serves another object straight from the bucket.
		other := randomBytes(100_000, 7)
		os.WriteFile(bucketFile(srv, "ext/nocache.bin"), other, 0o644)
		buf.Reset()
		g, err := files.Get(ctx, "/s3/ext/nocache.bin", &buf, client.GetOptions{NoCache: true, NoShortCircuit: true})
		if err != nil || !bytes.Equal(buf.Bytes(), other) {
			t.Fatalf("--no-cache read: %v", err)
		}
		if h := holders(t, ws, g.GetPath(), g.GetVersion()); len(h) != 0 {
			t.Fatalf("a --no-cache read cached the object on %v", h)
		}
		var sent float64
		for _, w := range mapWith(t, c, 3).GetWorkers() {
			sent += metric(t, w.GetAddress(), "cairn_ufs_bytes_total", `direction="read",mount="/s3"`)
		}
		if sent < float64(len(data)+len(other)) {
			t.Fatalf("cairn_ufs_bytes_total{mount=/s3,direction=read} = %v", sent)
		}
	})

	t.Run("the seed's mapping: /cache-only/a goes to /s3/a, and is restored from it", func(t *testing.T) {
		data := randomBytes(2<<20, 8)
		f := put("/cache-only/a/ckpt/step-1/model.bin", data, client.PutOptions{})
		if f.GetUfsPath() != "/s3/a/ckpt/step-1/model.bin" {
			t.Fatalf("mapped to %q", f.GetUfsPath())
		}
		eventually(t, 30*time.Second, "the mapped file to be PERSISTED", func() bool {
			return stat(f.GetPath()).GetPersistenceState() == cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED
		})
		if got := inBucket("a/ckpt/step-1/model.bin"); !bytes.Equal(got, data) {
			t.Fatalf("the bucket holds %d bytes at a/ckpt/step-1/model.bin", len(got))
		}
		if o, err := store.Stat(ctx, "/a/ckpt/step-1/model.bin"); err != nil || stat(f.GetPath()).GetUfsEtag() != o.ETag {
			t.Fatalf("the upload recorded ETag %q, the object has %q (%v)", stat(f.GetPath()).GetUfsEtag(), o.ETag, err)
		}
		dropAll := func() {
			for _, w := range ws {
				if _, err := w.Delete(ctx, connect.NewRequest(&cairnv1.DataServiceDeleteRequest{Path: f.GetPath()})); err != nil {
					t.Fatal(err)
				}
			}
		}
		dropAll()
		var buf bytes.Buffer
		if _, err := files.Get(ctx, f.GetPath(), &buf, client.GetOptions{NoShortCircuit: true}); err != nil || !bytes.Equal(buf.Bytes(), data) {
			t.Fatalf("restore of lost cache-only data from S3: %v", err)
		}
		eventually(t, 10*time.Second, "the restored copy to be cached", func() bool { return len(holders(t, ws, f.GetPath(), f.GetVersion())) > 0 })
		// Another program replaces the object: a restore refuses it.
		dropAll()
		w, _ := store.Create(ctx, "/a/ckpt/step-1/model.bin")
		w.Write(randomBytes(len(data), 9))
		if _, err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		_, err := files.Get(ctx, f.GetPath(), io.Discard, client.GetOptions{NoShortCircuit: true})
		if connect.CodeOf(err) != connect.CodeDataLoss || !strings.Contains(err.Error(), "ETag") {
			t.Fatalf("restore from a replaced object: %v, want DataLoss naming the ETag", err)
		}
	})

	t.Run("a worker killed mid-upload leaves no partial object; another owner uploads", func(t *testing.T) {
		data := randomBytes(160<<20, 10)
		f := put("/s3/big/ckpt.bin", data, client.PutOptions{WriteType: cairnv1.WriteType_WRITE_TYPE_ASYNC_THROUGH})
		w := leasedTo(t, c, f.GetPath(), f.GetVersion())
		w.signal(t, syscall.SIGSTOP)
		if _, err := store.Stat(ctx, "/big/ckpt.bin"); err == nil {
			t.Fatal("the object is visible while its upload is under way")
		}
		w.kill()
		eventually(t, 2*time.Minute, "the upload to be finished by another owner", func() bool {
			return stat(f.GetPath()).GetPersistenceState() == cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED
		})
		if got := inBucket("big/ckpt.bin"); xxhash.Sum64(got) != xxhash.Sum64(data) {
			t.Fatalf("the object holds %d bytes, not the file's %d", len(got), len(data))
		}
		job := lastPersistJob(t, c, f.GetPath())
		if tk := job.GetTasks()[0]; tk.GetAttempt() < 2 || tk.GetLeaseWorker() == w.name {
			t.Fatalf("after %s was killed: %v", w.name, job)
		}
		w.restart(t)
		mapWith(t, c, 3)
	})

	t.Run("an overwrite during an upload: the bucket ends with the newest version", func(t *testing.T) {
		v1, v2 := randomBytes(64<<20, 11), randomBytes(1<<20, 12)
		f1 := put("/s3/over.bin", v1, client.PutOptions{WriteType: cairnv1.WriteType_WRITE_TYPE_ASYNC_THROUGH})
		leasedTo(t, c, f1.GetPath(), f1.GetVersion())
		f2 := put("/s3/over.bin", v2, client.PutOptions{WriteType: cairnv1.WriteType_WRITE_TYPE_ASYNC_THROUGH, Overwrite: true})
		eventually(t, time.Minute, "the newest version to be PERSISTED", func() bool {
			f := stat("/s3/over.bin")
			return f.GetVersion() == f2.GetVersion() && f.GetPersistenceState() == cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED
		})
		// The cancelled upload of v1 may still complete until its lease
		// ends; the newest upload waited for that, so v2 stays.
		time.Sleep(3 * time.Second)
		if got := inBucket("over.bin"); !bytes.Equal(got, v2) {
			t.Fatalf("the bucket holds %d bytes, not the newest version's %d", len(got), len(v2))
		}
	})

	t.Run("a delete during an upload leaves no object", func(t *testing.T) {
		data := randomBytes(96<<20, 13)
		f := put("/s3/del.bin", data, client.PutOptions{WriteType: cairnv1.WriteType_WRITE_TYPE_ASYNC_THROUGH})
		w := leasedTo(t, c, f.GetPath(), f.GetVersion())
		w.signal(t, syscall.SIGSTOP)
		if _, err := jobCall(t, c, func(ctx context.Context, s client.Services) (*cairnv1.DeleteFileResponse, error) {
			r, err := s.Namespace.DeleteFile(ctx, connect.NewRequest(&cairnv1.DeleteFileRequest{Path: f.GetPath()}))
			if err != nil {
				return nil, err
			}
			return r.Msg, nil
		}); err != nil {
			t.Fatal(err)
		}
		w.signal(t, syscall.SIGCONT)
		eventually(t, time.Minute, "the deleted file's object to be dealt with", func() bool { return ufsCopyRemoved(t, c, f.GetPath()) })
		if _, err := store.Stat(ctx, "/del.bin"); err == nil {
			t.Fatal("a file deleted during its upload is in the bucket")
		}
	})

	t.Run("unmount is refused while it would lose data, and forgets the files when it is not", func(t *testing.T) {
		if out, err := mountS3(t, c, srv, "/s3b", "s3://"+s3Bucket+"/other"); err != nil {
			t.Fatalf("mount /s3b: %v\n%s", err, out)
		}
		put("/s3b/scratch", []byte("cache only"), client.PutOptions{})
		put("/s3b/kept", []byte("persisted"), client.PutOptions{WriteType: cairnv1.WriteType_WRITE_TYPE_CACHE_THROUGH})
		out, err := cairn(t, "mount", "rm", "/s3b", "--masters", c.addrs())
		if err == nil || !strings.Contains(out, "/s3b/scratch is PERSISTENCE_STATE_NOT_PERSISTED") {
			t.Fatalf("unmount with a file only in the cache: %v\n%s", err, out)
		}
		out, err = cairn(t, "mount", "rm", "/s3", "--masters", c.addrs())
		if err == nil || !strings.Contains(out, "/s3/wt/must is PERSISTENCE_STATE_NOT_PERSISTED") {
			t.Fatalf("unmount of /s3, which serves a file only in the cache: %v\n%s", err, out)
		}
		if _, err := files.Delete(ctx, "/s3b/scratch", false); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "/s3b to unmount", func() bool {
			out, err = cairn(t, "mount", "rm", "/s3b", "--masters", c.addrs())
			return err == nil
		})
		if !strings.Contains(out, "1 files left the namespace") {
			t.Fatalf("unmount: %s", out)
		}
		if _, err := files.Stat(ctx, "/s3b/kept"); connect.CodeOf(err) != connect.CodeNotFound {
			t.Fatalf("a file of the unmounted /s3b: %v", err)
		}
		if b, _ := os.ReadFile(filepath.Join(srv.Dir, s3Bucket, "other/kept")); string(b) != "persisted" {
			t.Fatalf("unmount touched the bucket: %q", b)
		}
	})

	t.Run("per-mount metrics on the workers", func(t *testing.T) {
		var reqs, written float64
		for _, w := range mapWith(t, c, 3).GetWorkers() {
			reqs += metric(t, w.GetAddress(), "cairn_ufs_requests_total", `mount="/s3",op="commit"`)
			written += metric(t, w.GetAddress(), "cairn_ufs_bytes_total", `direction="written",mount="/s3"`)
		}
		if reqs < 4 || written < 1<<20 {
			t.Fatalf("commits %v, bytes written %v to /s3", reqs, written)
		}
	})
}

// lastPersistJob returns the newest PERSIST job of path.
func lastPersistJob(t *testing.T, c *cluster, path string) *cairnv1.GetJobResponse {
	t.Helper()
	resp, err := listJobs(t, c, &cairnv1.ListJobsRequest{Kind: cairnv1.JobKind_JOB_KIND_PERSIST, PageSize: 50})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range resp.GetJobs() {
		if j.GetSpec().GetPath() == path {
			return getJob(t, c, j.GetId())
		}
	}
	t.Fatalf("no PERSIST job of %s", path)
	return nil
}

// TestS3MountRefusals: bad mounts are refused with a clear error, and
// nothing is journaled for them.
func TestS3MountRefusals(t *testing.T) {
	srv := s3test.Start(t)
	srv.Setenv(t)
	srv.Bucket(t, s3Bucket)
	other := s3test.StartWith(t, s3test.Options{Access: "someoneelse", Secret: "another-secret-key"})
	other.Bucket(t, s3Bucket)
	c := startClusterWith(t, 1, 1, []string{"--cache-only-mount", "/cache-only"}, nil)
	if _, err := c.client().Files().Put(context.Background(), "/data/x", strings.NewReader("x"), 1, client.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	opts := func(s *s3test.Server) []string {
		return []string{"--option", "endpoint=" + s.Endpoint, "--option", "path_style=true"}
	}
	for _, bad := range []struct {
		name string
		args []string
		want string
	}{
		{"an unknown scheme", []string{"/gs", "gs://bucket/x"}, `unknown URI scheme "gs"`},
		{"a credential as an option", append([]string{"/s3", "s3://cairn", "--option", "secret_access_key=x"}, opts(srv)...), `unknown option "secret_access_key"`},
		{"a mount over cairn's files", append([]string{"/data", "s3://cairn/d"}, opts(srv)...), "cairn has files under it (/data/x)"},
		{"a mount inside the cache-only mount", append([]string{"/cache-only/x", "s3://cairn/d"}, opts(srv)...), "inside the cache-only mount"},
		{"a bucket that does not exist", append([]string{"/nb", "s3://no-such-bucket"}, opts(srv)...), "the bucket does not exist"},
		{"wrong credentials", append([]string{"/wrong", "s3://cairn"}, opts(other)...), "refused this process's credentials"},
		{"a store that does not answer", []string{"/down", "s3://cairn", "--option", "endpoint=http://" + freeAddr(t), "--option", "path_style=true"}, "cannot be reached"},
		{"a folder that does not exist", []string{"/nofolder", "file:///no/such/folder"}, "no such file or directory"},
	} {
		out, err := cairn(t, append(append([]string{"mount", "add"}, bad.args...), "--masters", c.addrs())...)
		if err == nil || !strings.Contains(out, bad.want) {
			t.Errorf("%s: %v\n%s\nwant an error saying %q", bad.name, err, out, bad.want)
		}
	}
	out, err := cairn(t, "events", "tail", "--from", "1", "--no-follow", "--json", "--masters", c.addrs())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/gs", "/s3", "/data", "/cache-only/x", "/nb", "/wrong", "/down", "/nofolder"} {
		if mountedInLog(out, p) {
			t.Errorf("a refused mount of %s was journaled", p)
		}
	}
	if out, err := cairn(t, "mount", "ls", "--masters", c.addrs()); err != nil || strings.Contains(out, "/wrong") || !strings.Contains(out, "/cache-only") {
		t.Fatalf("mount ls: %v\n%s", err, out)
	}
	// Mounts are an admin's: an operator may list them, not change them.
	ops, err := cairn(t, "auth", "token", "create", "--name", "ops", "--role", "operator", "--masters", c.addrs())
	if err != nil {
		t.Fatalf("%v\n%s", err, ops)
	}
	token := strings.TrimSpace(strings.Split(ops, "\n")[0])
	if out, err := cairnAs(t, token, append([]string{"mount", "add", "/ok", "s3://cairn", "--masters", c.addrs()}, opts(srv)...)...); err == nil || !strings.Contains(out, "permission_denied") && !strings.Contains(out, "admin") {
		t.Fatalf("an operator's mount add: %v\n%s", err, out)
	}
	if out, err := cairnAs(t, token, "mount", "ls", "--masters", c.addrs()); err != nil {
		t.Fatalf("an operator's mount ls: %v\n%s", err, out)
	}
}

// mountedInLog reports whether the JSON event log out holds a ufs_mounted
// event for path.
func mountedInLog(out, path string) bool {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "ufs_mounted") && strings.Contains(line, `"`+path+`"`) {
			return true
		}
	}
	return false
}
