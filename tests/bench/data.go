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
	"path/filepath"
	"syscall"
	"time"

	"connectrpc.com/connect"

	"github.com/cairnhq/cairn/client"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// benchData measures the data path on one master and three workers (R = 1)
// against plain file reads of the same bytes on the same disk, in one run.
func benchData(args []string) error {
	fs := flag.NewFlagSet("data", flag.ExitOnError)
	sizeMiB := fs.Int("size-mib", 256, "file size in MiB")
	rounds := fs.Int("rounds", 3, "reads per measurement (the best is kept)")
	_ = fs.Parse(args)
	size := int64(*sizeMiB) << 20
	root, err := os.MkdirTemp("", "cairn-bench-data-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	ms, err := startMasters(root, 1)
	if err != nil {
		return err
	}
	m := ms[0]
	for i := range 3 {
		id := fmt.Sprintf("w%d", i+1)
		if err := m.startWorker(root, id, fmt.Sprintf("%dMiB", 8*(*sizeMiB))); err != nil {
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

	src := filepath.Join(root, "source.bin")
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		return err
	}
	if err := os.WriteFile(src, data, 0o644); err != nil {
		return err
	}
	rate := func(d time.Duration) float64 { return float64(size) / (1 << 20) / d.Seconds() }
	best := func(fn func() error) (time.Duration, error) {
		var b time.Duration
		for range *rounds {
			start := time.Now()
			if err := fn(); err != nil {
				return 0, err
			}
			if d := time.Since(start); b == 0 || d < b {
				b = d
			}
		}
		return b, nil
	}
	readPlain := func(path string) func() error {
		return func() error {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			// The same copy the SDK does: 1 MiB reads, no ReadFrom shortcut.
			_, err = io.CopyBuffer(struct{ io.Writer }{io.Discard}, f, make([]byte, 1<<20))
			return err
		}
	}

	plain, err := best(readPlain(src))
	if err != nil {
		return err
	}
	fmt.Printf("file size %d MiB; best of %d rounds for reads\n\n", *sizeMiB, *rounds)
	fmt.Printf("| measurement | MiB/s | ratio to its baseline |\n|---|---|---|\n")
	fmt.Printf("| plain file read (baseline for hits) | %.0f | 1.00 |\n", rate(plain))

	for _, wt := range []cairnv1.WriteType{cairnv1.WriteType_WRITE_TYPE_MUST_CACHE, cairnv1.WriteType_WRITE_TYPE_CACHE_THROUGH,
		cairnv1.WriteType_WRITE_TYPE_THROUGH, cairnv1.WriteType_WRITE_TYPE_ASYNC_THROUGH} {
		path := "/bench/" + wt.String()
		start := time.Now()
		if _, err := files.Put(ctx, path, bytes.NewReader(data), size, client.PutOptions{WriteType: wt}); err != nil {
			return fmt.Errorf("put %s: %w", wt, err)
		}
		fmt.Printf("| write %s | %.0f | |\n", wt, rate(time.Since(start)))
	}
	// Streamed against multipart writes of the same bytes, interleaved
	// round by round (each overwrites the last version of its path), so
	// all see the page cache alike; the best round of each is kept.
	type putCfg struct {
		wt       cairnv1.WriteType
		parallel int
	}
	var cfgs []putCfg
	for _, wt := range []cairnv1.WriteType{cairnv1.WriteType_WRITE_TYPE_MUST_CACHE, cairnv1.WriteType_WRITE_TYPE_CACHE_THROUGH} {
		for _, par := range []int{1, 2, 4} {
			cfgs = append(cfgs, putCfg{wt, par})
		}
	}
	bestPut := make([]time.Duration, len(cfgs))
	for range *rounds {
		for i, cfg := range cfgs {
			start := time.Now()
			if _, err := files.Put(ctx, fmt.Sprintf("/bench/put-%s-%d", cfg.wt, cfg.parallel), bytes.NewReader(data), size,
				client.PutOptions{WriteType: cfg.wt, Overwrite: true, Parallel: cfg.parallel}); err != nil {
				return fmt.Errorf("put %s with %d parts in flight: %w", cfg.wt, cfg.parallel, err)
			}
			if d := time.Since(start); bestPut[i] == 0 || d < bestPut[i] {
				bestPut[i] = d
			}
		}
	}
	for i, cfg := range cfgs {
		base := bestPut[i-i%3]
		how := "streamed (baseline for multipart)"
		if cfg.parallel > 1 {
			how = fmt.Sprintf("multipart, %d parts of %d MiB in flight", cfg.parallel, client.DefaultPartSize>>20)
		}
		fmt.Printf("| write %s, %s | %.0f | %.2f |\n", cfg.wt, how, rate(bestPut[i]), base.Seconds()/bestPut[i].Seconds())
	}

	hit, err := best(func() error {
		_, err := files.Get(ctx, "/bench/WRITE_TYPE_MUST_CACHE", io.Discard, client.GetOptions{NoShortCircuit: true})
		return err
	})
	if err != nil {
		return err
	}
	fmt.Printf("| remote hit (bulk endpoint, sendfile) | %.0f | %.2f |\n", rate(hit), plain.Seconds()/hit.Seconds())
	// What loopback TCP itself carries here: the same bytes sent with
	// sendfile to a socket in this process and read in 1 MiB reads, no
	// HTTP, no cairn. A remote hit cannot beat it.
	tcp, err := best(func() error { return loopbackCopy(src) })
	if err != nil {
		return err
	}
	fmt.Printf("| loopback TCP alone (sendfile to a socket, 1 MiB reads; the ceiling for remote hits) | %.0f | %.2f |\n", rate(tcp), plain.Seconds()/tcp.Seconds())
	framed, err := best(func() error {
		_, err := files.Get(ctx, "/bench/WRITE_TYPE_MUST_CACHE", io.Discard, client.GetOptions{NoShortCircuit: true, NoRawRead: true})
		return err
	})
	if err != nil {
		return err
	}
	fmt.Printf("| remote hit (DataService.Read messages) | %.0f | %.2f |\n", rate(framed), plain.Seconds()/framed.Seconds())
	sc, err := best(func() error {
		_, err := files.Get(ctx, "/bench/WRITE_TYPE_MUST_CACHE", io.Discard, client.GetOptions{})
		return err
	})
	if err != nil {
		return err
	}
	fmt.Printf("| short-circuit hit (block files read directly) | %.0f | %.2f |\n", rate(sc), plain.Seconds()/sc.Seconds())

	// Misses: files placed in the UFS by hand, each read once through cairn,
	// against reading a twin file straight from the UFS folder. Both start
	// from a cold page cache when this process may drop it (root), so both
	// read the disk, as a UFS read does.
	cold := dropCaches()
	ufs := filepath.Join(m.dir, "ufs")
	var missBest, directBest time.Duration
	for i := range *rounds {
		p := fmt.Sprintf("miss-%d.bin", i)
		if err := os.WriteFile(filepath.Join(ufs, p), data, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(ufs, "direct-"+p), data, 0o644); err != nil {
			return err
		}
		syscall.Sync()
		dropCaches()
		start := time.Now()
		if err := readPlain(filepath.Join(ufs, "direct-"+p))(); err != nil {
			return err
		}
		if d := time.Since(start); directBest == 0 || d < directBest {
			directBest = d
		}
		dropCaches()
		start = time.Now()
		if _, err := files.Get(ctx, "/"+p, io.Discard, client.GetOptions{NoShortCircuit: true}); err != nil {
			return fmt.Errorf("miss read: %w", err)
		}
		if d := time.Since(start); missBest == 0 || d < missBest {
			missBest = d
		}
	}
	state := "cold page cache"
	if !cold {
		state = "warm page cache: could not drop it"
	}
	fmt.Printf("| direct UFS read (baseline for misses, %s) | %.0f | 1.00 |\n", state, rate(directBest))
	fmt.Printf("| miss (owner reads the UFS, caches, serves) | %.0f | %.2f |\n", rate(missBest), directBest.Seconds()/missBest.Seconds())
	return nil
}

// dropCaches asks the kernel to drop clean page-cache pages; it reports
// whether it could (it needs root).
func dropCaches() bool {
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("1"), 0o200) == nil
}

// loopbackCopy sends the file at path over a loopback TCP connection
// with sendfile and reads it on the other end in 1 MiB reads.
func loopbackCopy(path string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	sent := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			sent <- err
			return
		}
		defer c.Close()
		f, err := os.Open(path)
		if err != nil {
			sent <- err
			return
		}
		defer f.Close()
		_, err = io.Copy(c, f) // *net.TCPConn from *os.File: sendfile
		sent <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, struct{ io.Reader }{c}, make([]byte, 1<<20)); err != nil {
		return err
	}
	return <-sent
}
