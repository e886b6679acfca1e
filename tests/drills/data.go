package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/cespare/xxhash/v2"

	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/placement"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// A drill that runs jobs writes files of its own beside the workload's:
//
//	/data/set/fNNNN   replication 0 (the map's R): what a rebalance or a
//	                  cleanup moves when R changes
//	/data/up/rR/fNN   ASYNC_THROUGH, replication 2: what the uploads carry;
//	                  their owners never change with R, so no rebalance or
//	                  cleanup touches them
//
// and the workload's own files have replication 3 (every worker), so the
// jobs' counters can be held against exactly the files they concern.

// fileRec is a file a drill wrote.
type fileRec struct {
	sum     uint64
	length  int64
	version uint64
}

// payload is the deterministic content of a drill's file.
func payload(p string, n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(xxhash.Sum64String(p), 7))
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for k := 0; k < 8 && i+k < n; k++ {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	return b
}

// writeFiles puts the files paths (size bytes each) with o, 8 at a time.
func writeFiles(ctx context.Context, cli *client.Client, paths []string, size int, o client.PutOptions) (map[string]fileRec, error) {
	files := cli.Files()
	out := map[string]fileRec{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan string)
	var errs []error
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				data := payload(p, size)
				var f *cairnv1.File
				var err error
				for try := 0; try < 5; try++ {
					pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
					f, err = files.Put(pctx, p, bytes.NewReader(data), int64(len(data)), o)
					if try > 0 && connect.CodeOf(err) == connect.CodeFailedPrecondition {
						// A try that failed over may have completed.
						if got, serr := files.Stat(pctx, p); serr == nil && got.GetChecksum() == xxhash.Sum64(data) && got.GetLength() == uint64(len(data)) {
							f, err = got, nil
						}
					}
					cancel()
					if err == nil || ctx.Err() != nil {
						break
					}
					time.Sleep(200 * time.Millisecond)
				}
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("put %s: %w", p, err))
				} else {
					out[p] = fileRec{sum: xxhash.Sum64(data), length: int64(len(data)), version: f.GetVersion()}
				}
				mu.Unlock()
			}
		}()
	}
	for _, p := range paths {
		work <- p
	}
	close(work)
	wg.Wait()
	return out, errors.Join(errs...)
}

// blockKey is the folder a worker keeps a cached version of a file in
// (blockstore's layout: the first 16 bytes of SHA-256(path) in hex, then
// "-v" and the version).
func blockKey(p string, version uint64) string {
	sum := sha256.Sum256([]byte(p))
	return hex.EncodeToString(sum[:16]) + "-v" + strconv.FormatUint(version, 10)
}

// onDisk is what a worker's disk holds: bytes per cached version (block
// folder), read from the container's file system, not asked of the worker.
type onDisk map[string]int64

func (c *cluster) disk(ctx context.Context, w string) (onDisk, error) {
	// The volume's folder on this host when it can be read there (fast),
	// else a tar of the container's folder through the engine.
	if dir := c.d.volumePath(ctx, c.project+"_"+w); dir != "" {
		out := onDisk{}
		blocks := filepath.Join(dir, "blocks")
		err := filepath.WalkDir(blocks, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil // removed while we walked: a copy going away
				}
				return err
			}
			if e.Type().IsRegular() && !strings.Contains(p, ".tmp-") {
				info, err := e.Info()
				if err != nil {
					return nil
				}
				out[filepath.Base(filepath.Dir(p))] += info.Size()
			}
			return nil
		})
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		return out, err
	}
	rc, err := c.d.archive(ctx, c.container(w), "/data/blocks")
	if errors.Is(err, os.ErrNotExist) {
		return onDisk{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	out := onDisk{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("the block files of %s: %w", w, err)
		}
		if hdr.Typeflag != tar.TypeReg || strings.Contains(hdr.Name, ".tmp-") {
			continue
		}
		out[path.Base(path.Dir(hdr.Name))] += hdr.Size
	}
}

// disks reads every worker's disk.
func (c *cluster) disks(ctx context.Context) (map[string]onDisk, error) {
	out := map[string]onDisk{}
	errs := make([]error, len(c.workers))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, w := range c.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := c.disk(ctx, w)
			mu.Lock()
			out[w], errs[i] = d, err
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// diskDelta compares two readings of the disks for files: the copies (and
// their bytes) that appeared, and those that went away.
func diskDelta(before, after map[string]onDisk, files map[string]fileRec) (added, addedBytes, removed, removedBytes int64) {
	for w := range after {
		for p, f := range files {
			k := blockKey(p, f.version)
			b, inBefore := before[w][k]
			a, inAfter := after[w][k]
			switch {
			case inAfter && !inBefore:
				added++
				addedBytes += a
			case inBefore && !inAfter:
				removed++
				removedBytes += b
			}
		}
	}
	return
}

// placement counts, for files under cm, the owners that lack their copy
// (missing) and the copies on workers that do not own them (extra), with a
// few examples.
func placementOf(disks map[string]onDisk, files map[string]fileRec, cm *cairnv1.ClusterMap) (missing, extra int, examples []string, err error) {
	pm, err := placement.FromClusterMap(cm)
	if err != nil {
		return 0, 0, nil, err
	}
	for p, f := range files {
		k := blockKey(p, f.version)
		for w, d := range disks {
			got, owner := d[k], pm.IsOwner(w, p)
			switch {
			case owner && got != f.length:
				missing++
				if len(examples) < 3 {
					examples = append(examples, fmt.Sprintf("%s: its owner %s holds %d of its %d bytes", p, w, got, f.length))
				}
			case !owner && got != 0:
				extra++
				if len(examples) < 3 {
					examples = append(examples, fmt.Sprintf("%s: %s holds a copy though it does not own it at epoch %d", p, w, cm.GetEpoch()))
				}
			}
		}
	}
	return missing, extra, examples, nil
}

// ufs reads files under prefix from the UFS volume (through a master's
// container, running or not): XXH64 and length per path.
func (c *cluster) ufs(ctx context.Context, prefix string) (map[string]fileRec, error) {
	if dir := c.d.volumePath(ctx, c.project+"_ufs"); dir != "" {
		out := map[string]fileRec{}
		root := filepath.Join(dir, filepath.FromSlash(prefix))
		err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil || !e.Type().IsRegular() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			out["/"+filepath.ToSlash(rel)] = fileRec{sum: xxhash.Sum64(b), length: int64(len(b))}
			return nil
		})
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		return out, err
	}
	rc, err := c.d.archive(ctx, c.container(c.masters[0]), path.Join("/ufs", prefix))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]fileRec{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	out := map[string]fileRec{}
	tr := tar.NewReader(rc)
	parent := path.Dir(prefix)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		h := xxhash.New()
		n, err := io.Copy(h, tr)
		if err != nil {
			return nil, err
		}
		out[path.Join(parent, hdr.Name)] = fileRec{sum: h.Sum64(), length: n}
	}
}

// jobs lists the jobs of a kind (every page).
func listJobs(ctx context.Context, cli *client.Client, kind cairnv1.JobKind) ([]*cairnv1.Job, error) {
	var out []*cairnv1.Job
	token := ""
	for {
		r, err := client.Msg(ctx, cli, func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.ListJobsResponse], error) {
			return s.Jobs.ListJobs(ctx, connect.NewRequest(&cairnv1.ListJobsRequest{Kind: kind, PageSize: 1000, PageToken: token}))
		})
		if err != nil {
			return nil, err
		}
		out = append(out, r.GetJobs()...)
		if token = r.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

func getJob(ctx context.Context, cli *client.Client, id uint64) (*cairnv1.GetJobResponse, error) {
	return client.Msg(ctx, cli, func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.GetJobResponse], error) {
		return s.Jobs.GetJob(ctx, connect.NewRequest(&cairnv1.GetJobRequest{Id: id}))
	})
}

// waitJob waits for a job to end and returns it; it must end in want.
func waitJob(ctx context.Context, cli *client.Client, id uint64, want cairnv1.JobState, d time.Duration) (*cairnv1.GetJobResponse, error) {
	deadline := time.Now().Add(d)
	for {
		r, err := getJob(ctx, cli, id)
		if err == nil && r.GetJob().GetState() != cairnv1.JobState_JOB_STATE_RUNNING {
			if r.GetJob().GetState() != want {
				return r, fmt.Errorf("job %d (%s) ended %s, want %s: %s", id, r.GetJob().GetSpec().GetKind(), r.GetJob().GetState(), want, r.GetJob().GetReason())
			}
			return r, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return r, fmt.Errorf("job %d did not end within %s (last: %v)", id, d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// leased reports how many of a job's tasks hold a lease, and the workers
// holding them.
func leased(r *cairnv1.GetJobResponse) (int, map[string]bool) {
	n, by := 0, map[string]bool{}
	for _, t := range r.GetTasks() {
		if t.GetState() == cairnv1.TaskState_TASK_STATE_LEASED {
			n++
			by[t.GetLeaseWorker()] = true
		}
	}
	return n, by
}

// rebalanceFor waits for the rebalance of an epoch to exist.
func rebalanceFor(ctx context.Context, cli *client.Client, epoch uint64, d time.Duration) (uint64, error) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		js, err := listJobs(ctx, cli, cairnv1.JobKind_JOB_KIND_REBALANCE)
		if err == nil {
			for _, j := range js {
				if j.GetSpec().GetEpoch() == epoch {
					return j.GetId(), nil
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0, fmt.Errorf("no rebalance for epoch %d within %s", epoch, d)
}

// setReplication sets R and returns the new map.
func setReplication(ctx context.Context, cli *client.Client, r uint32) (*cairnv1.ClusterMap, error) {
	if _, err := client.Msg(ctx, cli, func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.SetReplicationResponse], error) {
		return s.Cluster.SetReplication(ctx, connect.NewRequest(&cairnv1.SetReplicationRequest{Replication: r}))
	}); err != nil {
		return nil, err
	}
	return clusterMap(ctx, cli)
}

// persistJobs returns the PERSIST jobs of paths, the newest per path.
func persistJobs(ctx context.Context, cli *client.Client, files map[string]fileRec) (map[string]*cairnv1.Job, error) {
	js, err := listJobs(ctx, cli, cairnv1.JobKind_JOB_KIND_PERSIST)
	if err != nil {
		return nil, err
	}
	out := map[string]*cairnv1.Job{}
	for _, j := range js {
		p := j.GetSpec().GetPath()
		if _, ok := files[p]; ok && (out[p] == nil || out[p].GetId() < j.GetId()) {
			out[p] = j
		}
	}
	return out, nil
}

// checkUploads waits for every file of batch to be PERSISTED, then holds
// the journal's upload counters against the UFS: every file there with its
// bytes, and each PERSIST job counting whole uploads of its file, no more
// than the leases its task was given (a lease counted at most once). With
// exact, each file was uploaded once, and the bytes counted equal the
// bytes in the UFS; without (a worker was cut off: it may have uploaded a
// file and lost its lease before it could say so, and the next worker
// uploads it again, both counted, as both happened), the uploads beyond
// one are returned as again.
func (c *cluster) checkUploads(ctx context.Context, cli *client.Client, batch map[string]fileRec, exact bool, d time.Duration) (uploaded uint64, again int, err error) {
	files := cli.Files()
	deadline := time.Now().Add(d)
	for p := range batch {
		for {
			f, err := files.Stat(ctx, p)
			if err == nil && f.GetPersistenceState() == cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED {
				break
			}
			if time.Now().After(deadline) {
				return 0, 0, fmt.Errorf("%s not PERSISTED within %s (%v, %v)", p, d, f.GetPersistenceState(), err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	prefix := ""
	for p := range batch {
		prefix = path.Dir(p)
		break
	}
	inUFS, err := c.ufs(ctx, prefix)
	if err != nil {
		return 0, 0, err
	}
	var want uint64
	for p, f := range batch {
		u, ok := inUFS[p]
		if !ok || u.sum != f.sum || u.length != f.length {
			return 0, 0, fmt.Errorf("%s in the UFS: %d bytes, checksum %x; wrote %d bytes, %x", p, u.length, u.sum, f.length, f.sum)
		}
		want += uint64(f.length)
	}
	jobs, err := persistJobs(ctx, cli, batch)
	if err != nil {
		return 0, 0, err
	}
	for p, f := range batch {
		j := jobs[p]
		if j == nil {
			return 0, 0, fmt.Errorf("no PERSIST job for %s", p)
		}
		if j.GetState() != cairnv1.JobState_JOB_STATE_SUCCEEDED {
			return 0, 0, fmt.Errorf("PERSIST job %d of %s is %s: %s", j.GetId(), p, j.GetState(), j.GetReason())
		}
		cn := j.GetCounters()
		n, leases := cn.GetUploaded(), uint64(0)
		if jr, err := getJob(ctx, cli, j.GetId()); err == nil {
			for _, t := range jr.GetTasks() {
				leases += uint64(t.GetAttempt())
			}
		}
		switch {
		case cn.GetUploadedBytes() != n*uint64(f.length):
			return 0, 0, fmt.Errorf("PERSIST job %d counts %d bytes in %d uploads of the %d-byte %s", j.GetId(), cn.GetUploadedBytes(), n, f.length, p)
		case n == 0 || n > leases:
			return 0, 0, fmt.Errorf("PERSIST job %d counts %d uploads of %s on %d leases", j.GetId(), n, p, leases)
		case exact && n != 1:
			return 0, 0, fmt.Errorf("PERSIST job %d counts %d uploads of %s, which nothing cut off", j.GetId(), n, p)
		}
		uploaded += cn.GetUploadedBytes()
		again += int(n - 1)
	}
	if exact && uploaded != want {
		return 0, 0, fmt.Errorf("the PERSIST jobs count %d bytes uploaded, the UFS holds %d of these files", uploaded, want)
	}
	return uploaded, again, nil
}

// readFiles reads files back through the data path and compares them with
// what was written.
func readFiles(ctx context.Context, cli *client.Client, files map[string]fileRec) error {
	fs := cli.Files()
	for p, f := range files {
		var buf bytes.Buffer
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		got, err := fs.Get(rctx, p, &buf, client.GetOptions{NoShortCircuit: true})
		cancel()
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		if xxhash.Sum64(buf.Bytes()) != f.sum || int64(buf.Len()) != f.length || got.GetVersion() != f.version {
			return fmt.Errorf("%s reads back %d bytes (version %d) that differ from the %d written (version %d)", p, buf.Len(), got.GetVersion(), f.length, f.version)
		}
	}
	return nil
}
