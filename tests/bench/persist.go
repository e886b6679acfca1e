package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"connectrpc.com/connect"

	"github.com/cairnhq/cairn/client"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// benchPersist measures uploads to the UFS: MUST_CACHE files already in
// the cache are all asked to persist at once, and the time from the first
// PERSIST job's start to the last one's end (leader time) gives MiB/s and
// files/s; the baseline is cp of as many files of the same size into a
// folder on the same disk, in the same run.
func benchPersist(args []string) error {
	fs := flag.NewFlagSet("persist", flag.ExitOnError)
	large := fs.Int("large", 8, "large files")
	largeMiB := fs.Int("large-mib", 64, "size of each large file in MiB")
	small := fs.Int("small", 2000, "small files")
	smallKiB := fs.Int("small-kib", 4, "size of each small file in KiB")
	_ = fs.Parse(args)
	root, err := os.MkdirTemp("", "cairn-bench-persist-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	ms, err := startMasters(root, 1, "--persist-interval", "100ms", "--cleanup-settle", "1h")
	if err != nil {
		return err
	}
	m := ms[0]
	for i := range 3 {
		id := fmt.Sprintf("w%d", i+1)
		if err := m.startWorker(root, id, "8GiB"); err != nil {
			return err
		}
	}
	c := benchClient([]string{m.api})
	ctx := context.Background()
	if err := waitFor(30*time.Second, "3 workers", func() bool {
		r, err := c.Masters()[0].Cluster.GetClusterMap(ctx, connect.NewRequest(&cairnv1.GetClusterMapRequest{}))
		return err == nil && len(r.Msg.GetMap().GetWorkers()) == 3
	}); err != nil {
		return err
	}
	files := c.Files()
	ns := c.Masters()[0].Namespace
	jobs := c.Masters()[0].Jobs

	run := func(name string, n, size int) (time.Duration, error) {
		data := make([]byte, size)
		rand.Read(data)
		paths := make([]string, n)
		work := func(fn func(i int) error) error { return forEach(8, n, fn) }
		if err := work(func(i int) error {
			paths[i] = fmt.Sprintf("/%s/f%05d", name, i)
			b := bytes.Clone(data)
			copy(b, fmt.Sprint(i))
			_, err := files.Put(ctx, paths[i], bytes.NewReader(b), int64(size), client.PutOptions{})
			return err
		}); err != nil {
			return 0, fmt.Errorf("write %s files: %w", name, err)
		}
		exec.Command("sync").Run()
		if err := work(func(i int) error {
			_, err := ns.PersistFile(ctx, connect.NewRequest(&cairnv1.PersistFileRequest{Path: paths[i]}))
			return err
		}); err != nil {
			return 0, fmt.Errorf("ask to persist: %w", err)
		}
		var span time.Duration
		err := waitFor(10*time.Minute, name+" uploads", func() bool {
			r, err := jobs.ListJobs(ctx, connect.NewRequest(&cairnv1.ListJobsRequest{Kind: cairnv1.JobKind_JOB_KIND_PERSIST, PageSize: 1000}))
			if err != nil {
				return false
			}
			var lo, hi time.Time
			count := 0
			for {
				for _, j := range r.Msg.GetJobs() {
					if len(j.GetSpec().GetPath()) < len(name)+2 || j.GetSpec().GetPath()[1:len(name)+1] != name {
						continue
					}
					if j.GetState() != cairnv1.JobState_JOB_STATE_SUCCEEDED {
						return false
					}
					count++
					if s := j.GetCreatedTime().AsTime(); lo.IsZero() || s.Before(lo) {
						lo = s
					}
					if e := j.GetEndedTime().AsTime(); e.After(hi) {
						hi = e
					}
				}
				if r.Msg.GetNextPageToken() == "" {
					break
				}
				if r, err = jobs.ListJobs(ctx, connect.NewRequest(&cairnv1.ListJobsRequest{Kind: cairnv1.JobKind_JOB_KIND_PERSIST, PageSize: 1000, PageToken: r.Msg.GetNextPageToken()})); err != nil {
					return false
				}
			}
			span = hi.Sub(lo)
			return count == n
		})
		return span, err
	}
	cp := func(n, size int, withSync bool) (time.Duration, error) {
		src, dst := filepath.Join(root, "cp-src"), filepath.Join(root, "cp-dst")
		os.RemoveAll(src)
		os.MkdirAll(src, 0o755)
		data := make([]byte, size)
		for i := range n {
			rand.Read(data[:16])
			if err := os.WriteFile(filepath.Join(src, fmt.Sprint(i)), data, 0o644); err != nil {
				return 0, err
			}
		}
		return cpBest(src, dst, withSync)
	}
	fmt.Printf("| measurement | time | MiB/s | files/s | ratio to cp |\n|---|---|---|---|---|\n")
	for _, row := range []struct {
		name    string
		n, size int
	}{{"large", *large, *largeMiB << 20}, {"small", *small, *smallKiB << 10}} {
		up, err := run(row.name, row.n, row.size)
		if err != nil {
			return err
		}
		plain, err := cp(row.n, row.size, false)
		if err != nil {
			return err
		}
		synced, err := cp(row.n, row.size, true)
		if err != nil {
			return err
		}
		mib := float64(row.n*row.size) / (1 << 20)
		line := func(what string, d time.Duration) {
			fmt.Printf("| %s | %s | %.0f | %.0f | %.2f |\n", what, d.Round(time.Millisecond), mib/d.Seconds(), float64(row.n)/d.Seconds(), plain.Seconds()/d.Seconds())
		}
		line(fmt.Sprintf("cp -r of %d × %s (baseline)", row.n, fmtSize(row.size)), plain)
		line("cp -r, then sync", synced)
		line(fmt.Sprintf("upload of %d × %s (first job start to last end)", row.n, fmtSize(row.size)), up)
	}
	return nil
}

func fmtSize(b int) string {
	if b >= 1<<20 {
		return fmt.Sprintf("%d MiB", b>>20)
	}
	return fmt.Sprintf("%d KiB", b>>10)
}
