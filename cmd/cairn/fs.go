package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/client"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

func newFsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fs",
		Short: "Write, read, list and remove files in the cache",
		Long: `Files live in one namespace journaled by the masters; their bytes live on the
workers that own each path under the cluster map (R of them). Paths are
absolute ("/datasets/a.bin"); ".." and empty segments are refused.`,
	}
	cmd.AddCommand(newPutCmd(g), newGetCmd(g), newCatCmd(g), newLsCmd(g), newStatCmd(g), newRmCmd(g), newPersistCmd(g))
	return cmd
}

// bar draws a progress line for a transfer whose size is learnt late.
type bar struct {
	what  string
	start time.Time
	last  time.Time
	drawn bool
}

func newBar(what string) *bar { return &bar{what: what, start: time.Now()} }

func (b *bar) tick(done, total int64) {
	if fi, err := os.Stderr.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 || total < 8<<20 {
		return
	}
	if time.Since(b.last) < 100*time.Millisecond && done < total {
		return
	}
	b.last, b.drawn = time.Now(), true
	rate := float64(done) / max(time.Since(b.start).Seconds(), 1e-3)
	fmt.Fprintf(os.Stderr, "\r%s %s / %s (%3.0f%%) %s/s   ", b.what, formatSize(uint64(done)), formatSize(uint64(total)),
		100*float64(done)/float64(total), formatSize(uint64(rate)))
}

func (b *bar) end() {
	if b.drawn {
		fmt.Fprintln(os.Stderr)
	}
}

func newPutCmd(g *globals) *cobra.Command {
	var writeType string
	var overwrite bool
	var replication uint32
	var parallel, buffers int
	var partSize byteSize
	cmd := &cobra.Command{
		Use:   "put LOCAL PATH",
		Short: "Write a local file into the cache as PATH",
		Long: `Write LOCAL as the new version of PATH: the masters hand out the version,
the bytes go to every owner of PATH, and the version is published once all
of them hold it with the right checksum. --write-type says where the data
must land before the command returns: MUST_CACHE (the cache only,
evictable), CACHE_THROUGH (the cache and the UFS), THROUGH (the UFS only)
or ASYNC_THROUGH (the cache now, recorded as to be persisted).

With --parallel above 1 the write is multipart: LOCAL is read into parts of
--part-size bytes and up to --parallel parts travel at once, each to every
owner, which checks each part's checksum and, at the end, reads the whole
file back against its checksum. The memory it takes is --buffers × --part-size
(by default, with --parallel 4: 5 × 8 MiB = 40 MiB). A file no larger than
one part, and a THROUGH write, are streamed.`,
		Args: exactArgs(2, "LOCAL and PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("buffers") && parallel <= 1 {
				return usageError{errors.New("--buffers only matters with --parallel above 1")}
			}
			wt, ok := cairnv1.WriteType_value["WRITE_TYPE_"+strings.ToUpper(writeType)]
			if !ok {
				return usageError{fmt.Errorf("--write-type %q: want MUST_CACHE, CACHE_THROUGH, THROUGH or ASYNC_THROUGH", writeType)}
			}
			src, err := os.Open(args[0])
			if err != nil {
				return usageError{err}
			}
			defer src.Close()
			fi, err := src.Stat()
			if err != nil {
				return err
			}
			if !fi.Mode().IsRegular() {
				return usageError{fmt.Errorf("%s is not a regular file", args[0])}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			bar := newBar("put")
			file, err := c.Files().Put(cmd.Context(), args[1], src, fi.Size(), client.PutOptions{
				WriteType: cairnv1.WriteType(wt), Replication: replication, Overwrite: overwrite,
				Parallel: parallel, Buffers: buffers, PartSize: int64(partSize),
				Progress: func(sent int64) { bar.tick(sent, fi.Size()) }})
			bar.end()
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(file)
			}
			fmt.Fprintf(g.out, "%s version %d, %s, checksum %016x\n", file.GetPath(), file.GetVersion(), formatSize(file.GetLength()), file.GetChecksum())
			return nil
		},
	}
	cmd.Flags().StringVar(&writeType, "write-type", "MUST_CACHE", "MUST_CACHE, CACHE_THROUGH, THROUGH or ASYNC_THROUGH")
	cmd.Flags().BoolVar(&overwrite, "overwrite", false, "replace an existing file")
	cmd.Flags().Uint32Var(&replication, "replication", 0, "owners of this file (default: the cluster's R)")
	cmd.Flags().IntVar(&parallel, "parallel", 1, "parts in flight at once; above 1 makes a multipart write")
	cmd.Flags().IntVar(&buffers, "buffers", 0, "parts held in memory at once, at least --parallel (default --parallel + 1); memory = buffers × part size")
	partSize = byteSize(client.DefaultPartSize)
	cmd.Flags().Var(&partSize, "part-size", "size of a part of a multipart write (64KiB to 1GiB)")
	return cmd
}

func newGetCmd(g *globals) *cobra.Command {
	var noCache, noShort bool
	cmd := &cobra.Command{
		Use:   "get PATH LOCAL",
		Short: "Read PATH into a local file (from the cache, or from the UFS on a miss)",
		Args:  exactArgs(2, "PATH and LOCAL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			dst := args[1]
			tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*")
			if err != nil {
				return usageError{err}
			}
			defer os.Remove(tmp.Name())
			bar := newBar("get")
			file, err := c.Files().Get(cmd.Context(), args[0], tmp, client.GetOptions{NoCache: noCache, NoShortCircuit: noShort, Progress: bar.tick})
			bar.end()
			if err != nil {
				tmp.Close()
				return err
			}
			if err := tmp.Close(); err != nil {
				return err
			}
			if err := os.Rename(tmp.Name(), dst); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(file)
			}
			fmt.Fprintf(g.out, "%s version %d, %s, to %s\n", file.GetPath(), file.GetVersion(), formatSize(file.GetLength()), dst)
			return nil
		},
	}
	cmd.Flags().BoolVar(&noCache, "no-cache", false, "read a file that is not cached straight from the UFS, without caching it")
	cmd.Flags().BoolVar(&noShort, "no-short-circuit", false, "read through the worker's API even when its block files are on this machine's disk")
	return cmd
}

func newCatCmd(g *globals) *cobra.Command {
	var noCache, noPartial bool
	var offset, length uint64
	cmd := &cobra.Command{
		Use:   "cat PATH",
		Short: "Write PATH's bytes (or --offset/--length of them) to standard output",
		Args:  exactArgs(1, "a PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if offset > 0 || length > 0 {
				_, err = c.Files().ReadRange(cmd.Context(), args[0], offset, length, os.Stdout, client.RangeOptions{NoCache: noCache, NoPartialCaching: noPartial})
				return err
			}
			_, err = c.Files().Get(cmd.Context(), args[0], os.Stdout, client.GetOptions{NoCache: noCache})
			return err
		},
	}
	cmd.Flags().BoolVar(&noCache, "no-cache", false, "read a file that is not cached straight from the UFS, without caching it")
	cmd.Flags().Uint64Var(&offset, "offset", 0, "start at this byte")
	cmd.Flags().Uint64Var(&length, "length", 0, "write at most this many bytes (0: to the end)")
	cmd.Flags().BoolVar(&noPartial, "no-partial-caching", false, "a range of a file that is not cached is read from the UFS without caching the file (the cluster's cache.partial setting decides otherwise)")
	return cmd
}

func newLsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "ls [PREFIX]",
		Short: "List the files at or under PREFIX (default /)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			prefix := "/"
			if len(args) == 1 {
				prefix = args[0]
			}
			c, ctx, cancel, err := g.session(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			var files []*cairnv1.File
			var rows [][]string
			err = c.Files().List(ctx, prefix, func(f *cairnv1.File) error {
				if g.json {
					files = append(files, f)
					return nil
				}
				rows = append(rows, []string{f.GetPath(), formatSize(f.GetLength()), fmt.Sprint(f.GetVersion()),
					shortEnum(f.GetWriteType().String(), "WRITE_TYPE_"), shortEnum(f.GetPersistenceState().String(), "PERSISTENCE_STATE_"), fmtTime(f.GetCompletedTime())})
				return nil
			})
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(&cairnv1.ListFilesResponse{Files: files})
			}
			return g.table([]string{"PATH", "SIZE", "VERSION", "WRITE TYPE", "PERSISTENCE", "WRITTEN"}, rows)
		},
	}
}

func shortEnum(s, prefix string) string { return strings.TrimPrefix(s, prefix) }

func newStatCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "stat PATH",
		Short: "Show the namespace's record of PATH: version, size, checksum, write type, persistence",
		Args:  exactArgs(1, "a PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, cancel, err := g.session(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			f, err := c.Files().Stat(ctx, args[0])
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(f)
			}
			rows := [][]string{
				{"path", f.GetPath()}, {"version", fmt.Sprint(f.GetVersion())}, {"size", fmt.Sprintf("%d (%s)", f.GetLength(), formatSize(f.GetLength()))},
				{"checksum", fmt.Sprintf("%016x (xxh64)", f.GetChecksum())}, {"block size", formatSize(f.GetBlockSize())},
				{"write type", shortEnum(f.GetWriteType().String(), "WRITE_TYPE_")},
				{"persistence", shortEnum(f.GetPersistenceState().String(), "PERSISTENCE_STATE_")},
				{"persist error", f.GetPersistError()}, {"ufs mtime", fmtTime(f.GetUfsMtime())},
				{"ufs drift", f.GetUfsDrift()}, {"ufs drift time", fmtTime(f.GetUfsDriftTime())},
				{"pinned", fmt.Sprint(f.GetPinned())}, {"etag", f.GetEtag()}, {"written", fmtTime(f.GetCompletedTime())},
			}
			for k, v := range f.GetMetadata() {
				rows = append(rows, []string{"metadata " + k, v})
			}
			return g.table([]string{"FIELD", "VALUE"}, rows)
		},
	}
}

func newRmCmd(g *globals) *cobra.Command {
	var recursive bool
	cmd := &cobra.Command{
		Use:   "rm PATH",
		Short: "Remove PATH (with -r, everything under it) and its cached copies",
		Args:  exactArgs(1, "a PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, cancel, err := g.session(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			n, err := c.Files().Delete(ctx, args[0], recursive)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(map[string]uint64{"deleted": n})
			}
			fmt.Fprintf(g.out, "removed %d file(s)\n", n)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&recursive, "recursive", "r", false, "remove everything under PATH")
	return cmd
}

func newPersistCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "persist PATH",
		Short: "Upload PATH to the UFS in the background (again, after a failed upload); cairn fs stat shows how it stands",
		Args:  exactArgs(1, "a PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, cancel, err := g.session(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			f, err := client.Call(ctx, c, func(ctx context.Context, s client.Services) (*cairnv1.File, error) {
				r, err := s.Namespace.PersistFile(ctx, connect.NewRequest(&cairnv1.PersistFileRequest{Path: args[0]}))
				if err != nil {
					return nil, err
				}
				return r.Msg.GetFile(), nil
			})
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(f)
			}
			fmt.Fprintf(g.out, "%s version %d: %s\n", f.GetPath(), f.GetVersion(), shortEnum(f.GetPersistenceState().String(), "PERSISTENCE_STATE_"))
			return nil
		},
	}
}
