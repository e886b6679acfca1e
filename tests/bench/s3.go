package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/persistence"
	"github.com/cairnhq/cairn/persistence/s3test"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

// benchS3 measures cairn against an S3 server (versitygw on loopback, over
// a folder on this machine's disk), beside the same bytes moved by the S3
// client library alone (aws-sdk-go-v2, no cairn) to and from the same
// server in the same run:
//
//   - upload: files already cached (MUST_CACHE under the S3 mount) are all
//     asked to persist at once; the time from the first PERSIST job's start
//     to the last one's end (leader time). The library: the same number of
//     objects of the same size put at once, each a multipart upload with the
//     mount's part size and parallel parts.
//   - miss read: objects the library put in the bucket, read one after
//     another through cairn (a miss: the owner reads the object, serves it
//     and caches it), to a discarding writer. The library: one GetObject
//     each, streamed to a discarding writer.
func benchS3(args []string) error {
	fs := flag.NewFlagSet("s3", flag.ExitOnError)
	files := fs.Int("files", 4, "files per measurement")
	sizeMiB := fs.Int("size-mib", 256, "size of each file in MiB")
	rounds := fs.Int("rounds", 2, "rounds of each measurement (the best is kept)")
	_ = fs.Parse(args)
	size := *sizeMiB << 20
	root, err := os.MkdirTemp("", "cairn-bench-s3-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)

	endpoint, err := startVersitygw(root)
	if err != nil {
		return err
	}
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": s3test.Access, "AWS_SECRET_ACCESS_KEY": s3test.Secret, "AWS_REGION": "us-east-1"} {
		os.Setenv(k, v) // the cairn processes inherit them
	}
	ms, err := startMasters(root, 1, "--persist-interval", "100ms", "--cleanup-settle", "1h")
	if err != nil {
		return err
	}
	m := ms[0]
	for i := range 3 {
		if err := m.startWorker(root, fmt.Sprintf("w%d", i+1), "16GiB"); err != nil {
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
	opts := map[string]string{"endpoint": endpoint, "path_style": "true"}
	if _, err := c.Masters()[0].Namespace.AddMount(ctx, connect.NewRequest(&cairnv1.AddMountRequest{Path: "/s3", Uri: "s3://bench/data", Options: opts})); err != nil {
		return fmt.Errorf("mount: %w", err)
	}
	spec, _ := persistence.ParseURI("s3://bench/data", opts)
	lib, err := libClient(ctx, endpoint)
	if err != nil {
		return err
	}

	data := make([]byte, size)
	rand.Read(data)
	variant := func(i int) []byte {
		b := bytes.Clone(data)
		copy(b, fmt.Sprintf("%d-%d", i, time.Now().UnixNano()))
		return b
	}
	var libUp, cairnUp, libRead, libFile, cairnRead, cairnNoCache []time.Duration
	for round := range *rounds {
		// The library's upload: every object at once, each in parallel parts.
		start := time.Now()
		if err := forEach(*files, *files, func(i int) error {
			return libPut(ctx, lib, fmt.Sprintf("data/lib/%d-%d", round, i), variant(i), spec.PartSize, spec.ParallelParts)
		}); err != nil {
			return fmt.Errorf("library upload: %w", err)
		}
		libUp = append(libUp, time.Since(start))

		// cairn's upload of cached files.
		fc := c.Files()
		paths := make([]string, *files)
		for i := range paths {
			paths[i] = fmt.Sprintf("/s3/up%d/f%d", round, i)
			b := variant(i)
			if _, err := fc.Put(ctx, paths[i], bytes.NewReader(b), int64(len(b)), client.PutOptions{}); err != nil {
				return fmt.Errorf("write %s: %w", paths[i], err)
			}
		}
		exec.Command("sync").Run()
		for _, p := range paths {
			if _, err := c.Masters()[0].Namespace.PersistFile(ctx, connect.NewRequest(&cairnv1.PersistFileRequest{Path: p})); err != nil {
				return err
			}
		}
		span, err := persistSpan(ctx, c, fmt.Sprintf("/s3/up%d/", round), *files)
		if err != nil {
			return err
		}
		cairnUp = append(cairnUp, span)

		// Reads of objects cairn has never seen: the library, then cairn.
		for i := range *files {
			if err := libPut(ctx, lib, fmt.Sprintf("data/cold%d/f%d", round, i), variant(i), spec.PartSize, spec.ParallelParts); err != nil {
				return err
			}
		}
		exec.Command("sync").Run()
		libGet := func(into func(i int) (io.WriteCloser, error)) (time.Duration, error) {
			start := time.Now()
			buf := make([]byte, 1<<20)
			for i := range *files {
				out, err := lib.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bench"), Key: aws.String(fmt.Sprintf("data/cold%d/f%d", round, i))})
				if err != nil {
					return 0, fmt.Errorf("library read: %w", err)
				}
				w, err := into(i)
				if err == nil {
					_, err = io.CopyBuffer(w, out.Body, buf)
					if cerr := w.Close(); err == nil {
						err = cerr
					}
				}
				out.Body.Close()
				if err != nil {
					return 0, err
				}
			}
			return time.Since(start), nil
		}
		d, err := libGet(func(int) (io.WriteCloser, error) { return nopCloser{io.Discard}, nil })
		if err != nil {
			return err
		}
		libRead = append(libRead, d)
		d, err = libGet(func(i int) (io.WriteCloser, error) {
			return os.Create(filepath.Join(root, fmt.Sprintf("download-%d", i)))
		})
		if err != nil {
			return err
		}
		libFile = append(libFile, d)
		start = time.Now()
		for i := range *files {
			if _, err := fc.Get(ctx, fmt.Sprintf("/s3/cold%d/f%d", round, i), io.Discard, client.GetOptions{NoShortCircuit: true}); err != nil {
				return fmt.Errorf("cairn read: %w", err)
			}
		}
		cairnRead = append(cairnRead, time.Since(start))
		// --no-cache of the same objects, now known to the namespace and
		// cached: a cached copy is dropped first, so the owner reads S3.
		ws, err := workerData(ctx, c)
		if err != nil {
			return err
		}
		for i := range *files {
			for _, w := range ws {
				w.Delete(ctx, connect.NewRequest(&cairnv1.DataServiceDeleteRequest{Path: fmt.Sprintf("/s3/cold%d/f%d", round, i)}))
			}
		}
		start = time.Now()
		for i := range *files {
			if _, err := fc.Get(ctx, fmt.Sprintf("/s3/cold%d/f%d", round, i), io.Discard, client.GetOptions{NoCache: true, NoShortCircuit: true}); err != nil {
				return fmt.Errorf("cairn --no-cache read: %w", err)
			}
		}
		cairnNoCache = append(cairnNoCache, time.Since(start))
	}
	best := func(ds []time.Duration) time.Duration {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[0]
	}
	mib := float64(*files*size) / (1 << 20)
	rate := func(d time.Duration) float64 { return mib / d.Seconds() }
	fmt.Printf("| measurement (%d × %d MiB, best of %d) | time | MiB/s | cairn / library |\n|---|---|---|---|\n", *files, *sizeMiB, *rounds)
	fmt.Printf("| upload, the library alone (%d objects at once, %d MiB parts, %d in parallel each) | %s | %.0f | |\n", *files, spec.PartSize>>20, spec.ParallelParts, best(libUp).Round(time.Millisecond), rate(best(libUp)))
	fmt.Printf("| upload, cairn (PERSIST of cached files, first job start to last end) | %s | %.0f | %.0f%% |\n", best(cairnUp).Round(time.Millisecond), rate(best(cairnUp)), 100*best(libUp).Seconds()/best(cairnUp).Seconds())
	fmt.Printf("| read, the library alone (GetObject, one object after another, to a discarding writer) | %s | %.0f | |\n", best(libRead).Round(time.Millisecond), rate(best(libRead)))
	fmt.Printf("| read, the library alone, into a file on this disk (a download without cairn) | %s | %.0f | |\n", best(libFile).Round(time.Millisecond), rate(best(libFile)))
	fmt.Printf("| miss read, cairn (objects it has never seen: read, served and cached on this disk) | %s | %.0f | %.0f%% of the download, %.0f%% of the discarding read |\n",
		best(cairnRead).Round(time.Millisecond), rate(best(cairnRead)), 100*best(libFile).Seconds()/best(cairnRead).Seconds(), 100*best(libRead).Seconds()/best(cairnRead).Seconds())
	fmt.Printf("| --no-cache read, cairn (the owner streams the object, caching nothing) | %s | %.0f | %.0f%% of the discarding read |\n",
		best(cairnNoCache).Round(time.Millisecond), rate(best(cairnNoCache)), 100*best(libRead).Seconds()/best(cairnNoCache).Seconds())
	return nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// workerData reaches every worker's DataService with the admin token.
func workerData(ctx context.Context, c *client.Client) ([]cairnv1connect.DataServiceClient, error) {
	r, err := c.Masters()[0].Cluster.GetClusterMap(ctx, connect.NewRequest(&cairnv1.GetClusterMapRequest{}))
	if err != nil {
		return nil, err
	}
	var out []cairnv1connect.DataServiceClient
	for _, w := range r.Msg.GetMap().GetWorkers() {
		out = append(out, cairnv1connect.NewDataServiceClient(benchHTTP(), baseURL(w.GetAddress())))
	}
	return out, nil
}

// startVersitygw runs versitygw (bin/versitygw, installed when missing)
// over root/s3 with a bucket "bench" and returns its endpoint.
func startVersitygw(root string) (string, error) {
	bin, err := s3test.Binary()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "s3")
	if err := os.MkdirAll(filepath.Join(dir, "bench"), 0o755); err != nil {
		return "", err
	}
	addr := freeAddr()
	logf, err := os.Create(filepath.Join(root, "versitygw.log"))
	if err != nil {
		return "", err
	}
	cmd := exec.Command(bin, "--access", s3test.Access, "--secret", s3test.Secret, "--port", addr, "posix", dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	procsMu.Lock()
	procs = append(procs, cmd)
	procsMu.Unlock()
	return "http://" + addr, waitFor(20*time.Second, "versitygw", func() bool {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
}

// libClient is the library on its own: aws-sdk-go-v2 with the settings
// cairn's S3 UFS uses (path style, checksums only where required).
func libClient(ctx context.Context, endpoint string) (*s3.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"))
	if err != nil {
		return nil, err
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint, o.UsePathStyle = aws.String(endpoint), true
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}), nil
}

// libPut uploads data as one multipart upload of partSize parts, parallel
// at a time, with the library's own calls.
func libPut(ctx context.Context, c *s3.Client, key string, data []byte, partSize int64, parallel int) error {
	mu, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("bench"), Key: &key})
	if err != nil {
		return err
	}
	n := int((int64(len(data)) + partSize - 1) / partSize)
	parts := make([]s3types.CompletedPart, n)
	if err := forEach(parallel, n, func(i int) error {
		b := data[int64(i)*partSize : min(int64(i+1)*partSize, int64(len(data)))]
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("bench"), Key: &key, UploadId: mu.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(b), ContentLength: aws.Int64(int64(len(b)))})
		if err == nil {
			parts[i] = s3types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(i + 1))}
		}
		return err
	}); err != nil {
		return err
	}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("bench"), Key: &key, UploadId: mu.UploadId,
		MultipartUpload: &s3types.CompletedMultipartUpload{Parts: parts}})
	return err
}

// persistSpan waits for the n PERSIST jobs of files under prefix to
// succeed and returns the time from the first one's start to the last
// one's end.
func persistSpan(ctx context.Context, c *client.Client, prefix string, n int) (time.Duration, error) {
	var span time.Duration
	err := waitFor(10*time.Minute, "uploads under "+prefix, func() bool {
		r, err := c.Masters()[0].Jobs.ListJobs(ctx, connect.NewRequest(&cairnv1.ListJobsRequest{Kind: cairnv1.JobKind_JOB_KIND_PERSIST, PageSize: 1000}))
		if err != nil {
			return false
		}
		var lo, hi time.Time
		count := 0
		for _, j := range r.Msg.GetJobs() {
			p := j.GetSpec().GetPath()
			if len(p) < len(prefix) || p[:len(prefix)] != prefix {
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
		span = hi.Sub(lo)
		return count == n
	})
	return span, err
}
