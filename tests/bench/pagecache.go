package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cairnhq/cairn/directio"
)

// benchPageCache measures what writing into the page cache costs on this
// machine, with buffered writes and with direct I/O: into memory the
// kernel freed a moment ago, and into memory it freed seconds ago. On a
// virtual machine whose host backs guest memory lazily (and takes freed
// pages back), the second case pays a host fault per page; the figures
// explain why the UFS writer and the benchmarks' baselines behave as
// they do.
func benchPageCache(args []string) error {
	fs := flag.NewFlagSet("pagecache", flag.ExitOnError)
	mib := fs.Int("mib", 512, "MiB written per measurement")
	pause := fs.Duration("pause", 5*time.Second, "wait before the cold measurements")
	fs.Parse(args)
	dir, err := os.MkdirTemp("", "cairn-bench-pagecache-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	data := make([]byte, 4<<20)
	for i := range data {
		data[i] = byte(i)
	}
	n := *mib / 4
	// Aligned for direct I/O, and allocated before the clock starts: fresh
	// memory is what the rows measure, in the page cache alone.
	buf := directio.Aligned(len(data))
	copy(buf, data)
	write := func(direct bool) (time.Duration, error) {
		start := time.Now()
		for i := range n {
			flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
			if direct {
				flags |= directio.Flag
			}
			f, err := os.OpenFile(filepath.Join(dir, fmt.Sprint(i)), flags, 0o644)
			if err != nil {
				return 0, err
			}
			_, err = f.Write(buf)
			f.Close()
			if err != nil {
				return 0, fmt.Errorf("write (direct %v): %w", direct, err)
			}
		}
		return time.Since(start), nil
	}
	clear := func() {
		for i := range n {
			os.Remove(filepath.Join(dir, fmt.Sprint(i)))
		}
	}
	fmt.Printf("| write of %d MiB into new files | time | MiB/s |\n|---|---|---|\n", *mib)
	for _, row := range []struct {
		name         string
		direct, cold bool
	}{
		{"buffered, memory freed seconds ago", false, true},
		{"buffered, memory freed a moment ago", false, false},
		{"direct I/O, memory freed seconds ago", true, true},
	} {
		if row.cold {
			time.Sleep(*pause)
		}
		d, err := write(row.direct)
		if err != nil {
			return err
		}
		fmt.Printf("| %s | %s | %.0f |\n", row.name, d.Round(time.Millisecond), float64(*mib)/d.Seconds())
		clear()
	}
	return nil
}
