package client

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/cespare/xxhash/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairnhq/cairn/apiserver"
	"github.com/cairnhq/cairn/placement"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

// chunkSize is how much data one Write message carries.
const chunkSize = 1 << 20

// Files reads and writes file data: namespace calls go to the masters, the
// bytes to the workers that own each path under the current cluster map.
type Files struct {
	c       *Client
	hc      *http.Client
	mu      sync.Mutex
	workers map[string]cairnv1connect.DataServiceClient
}

// Files returns the data-plane client.
func (c *Client) Files() *Files {
	return &Files{c: c, hc: &http.Client{Transport: apiserver.HTTP1Transport()}, workers: make(map[string]cairnv1connect.DataServiceClient)}
}

func (f *Files) worker(addr string) cairnv1connect.DataServiceClient {
	f.mu.Lock()
	defer f.mu.Unlock()
	w, ok := f.workers[addr]
	if !ok {
		// File data travels uncompressed (see apiserver.DataHandlerOptions).
		w = cairnv1connect.NewDataServiceClient(f.hc, "http://"+addr, connect.WithAcceptCompression("gzip", nil, nil))
		f.workers[addr] = w
	}
	return w
}

// owner is a worker that owns a path.
type owner struct{ id, addr string }

// owners returns the owners of path under the current map, primary
// first, for replication r (0: the map's R).
func (f *Files) owners(ctx context.Context, path string, r uint32) ([]owner, uint64, error) {
	of, epoch, err := f.ownersOf(ctx)
	if err != nil {
		return nil, epoch, err
	}
	return of(path, r), epoch, nil
}

// ownersOf fetches the current map once and returns the owner function
// under it, for callers that place many paths.
func (f *Files) ownersOf(ctx context.Context) (func(path string, r uint32) []owner, uint64, error) {
	cm, err := Call(ctx, f.c, func(ctx context.Context, s Services) (*cairnv1.ClusterMap, error) {
		resp, err := s.Cluster.GetClusterMap(ctx, connect.NewRequest(&cairnv1.GetClusterMapRequest{}))
		if err != nil {
			return nil, err
		}
		return resp.Msg.GetMap(), nil
	})
	if err != nil {
		return nil, 0, err
	}
	if len(cm.GetWorkers()) == 0 {
		return nil, cm.GetEpoch(), connect.NewError(connect.CodeUnavailable, fmt.Errorf("no ACTIVE workers in the cluster map (epoch %d)", cm.GetEpoch()))
	}
	pm, err := placement.FromClusterMap(cm)
	if err != nil {
		return nil, 0, err
	}
	addrs := make(map[string]string, len(cm.GetWorkers()))
	for _, w := range cm.GetWorkers() {
		addrs[w.GetId()] = w.GetAddress()
	}
	return func(path string, r uint32) []owner {
		n := int(r)
		if n == 0 {
			n = int(max(cm.GetReplication(), 1))
		}
		var out []owner
		for _, i := range pm.OwnersN(nil, path, n) {
			out = append(out, owner{id: pm.ID(i), addr: addrs[pm.ID(i)]})
		}
		return out
	}, cm.GetEpoch(), nil
}

// PutOptions say how to write a file.
type PutOptions struct {
	WriteType cairnv1.WriteType
	// Replication of the file; 0 takes the cluster map's R.
	Replication uint32
	Overwrite   bool
	ETag        string
	Metadata    map[string]string
	// Progress, if set, is called with the bytes sent so far (every owner
	// has taken them). Calls never overlap.
	Progress func(sent int64)
	// StallTimeout ends the write (Unavailable) when no owner has taken a
	// byte or answered for this long: an owner that stopped answering
	// must not hang the write. 0 means one minute; negative, never.
	StallTimeout time.Duration
	// Parallel above 1 makes a multipart write: the source is read into
	// parts of PartSize bytes, held in up to Buffers buffers, and up to
	// Parallel parts are sent at once, each to every owner. The memory it
	// takes is Buffers × PartSize. A file no larger than one part, and a
	// THROUGH write, are streamed as with Parallel 1.
	Parallel int
	// Buffers is how many parts may be in memory at once (read and not yet
	// taken by every owner); 0 means Parallel + 1. It must be at least
	// Parallel.
	Buffers int
	// PartSize is the size of a part; 0 means DefaultPartSize.
	PartSize int64
}

// DefaultPartSize is the part size of a multipart write unless
// PutOptions.PartSize says otherwise.
const DefaultPartSize = 8 << 20

// MaxPartSize bounds PutOptions.PartSize (each part is held in memory).
const MaxPartSize = 1 << 30

// multipart reports whether o asks for a multipart write of size bytes,
// after checking its settings.
func (o *PutOptions) multipart(size int64) (bool, error) {
	if o.Parallel <= 1 {
		return false, nil
	}
	if o.PartSize == 0 {
		o.PartSize = DefaultPartSize
	}
	if o.Buffers == 0 {
		o.Buffers = o.Parallel + 1
	}
	switch {
	case o.PartSize < 64<<10 || o.PartSize > MaxPartSize:
		return false, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("part size %d must be between 64 KiB and 1 GiB", o.PartSize))
	case o.Buffers < o.Parallel:
		return false, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("%d buffers cannot feed %d parts in flight: buffers must be at least parallel", o.Buffers, o.Parallel))
	}
	return size > o.PartSize && o.WriteType != cairnv1.WriteType_WRITE_TYPE_THROUGH, nil
}

// watchdog ends a write whose owners stopped taking bytes (see
// PutOptions.StallTimeout).
type watchdog struct {
	ctx       context.Context
	cancel    context.CancelCauseFunc
	last      atomic.Int64 // unix ns of the last progress
	waitingOn atomic.Int32 // the owner being sent to
	held      atomic.Int32 // holds in force (see hold)
}

// hold stops the clock until release is called: for time spent on
// something other than waiting for the owner (writing to a slow
// destination), or on a call that bounds itself (a completion that reads
// a whole file back).
func (wd *watchdog) hold() (release func()) {
	wd.held.Add(1)
	return func() {
		wd.progressed()
		wd.held.Add(-1)
	}
}

// watch starts the watchdog of what (a write or a read of a path) with
// owners; stop it with wd.cancel(nil).
func watch(ctx context.Context, what string, owners []owner, stall time.Duration) *watchdog {
	wd := &watchdog{}
	wd.ctx, wd.cancel = context.WithCancelCause(ctx)
	wd.progressed()
	if stall = cmp.Or(stall, time.Minute); stall <= 0 {
		return wd
	}
	go func() {
		tick := time.NewTicker(max(stall/8, 10*time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-wd.ctx.Done():
				return
			case <-tick.C:
			}
			if wd.held.Load() > 0 {
				wd.progressed()
				continue
			}
			if idle := time.Since(time.Unix(0, wd.last.Load())); idle > stall {
				ow := owners[min(int(wd.waitingOn.Load()), len(owners)-1)]
				wd.cancel(connect.NewError(connect.CodeUnavailable, fmt.Errorf("%s: worker %s (%s) made no progress for %s; it may be overloaded or stopped",
					what, ow.id, ow.addr, idle.Round(time.Millisecond))))
				return
			}
		}
	}()
	return wd
}

func (wd *watchdog) progressed()     { wd.last.Store(time.Now().UnixNano()) }
func (wd *watchdog) sendingTo(i int) { wd.waitingOn.Store(int32(i)) }

// stalled returns the watchdog's error in place of err when it fired.
func (wd *watchdog) stalled(err error) error {
	if cause := context.Cause(wd.ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

// Put writes size bytes from r as the new version of path: it starts the
// write on the masters, sends the bytes to every owner (the primary
// owner also writes the UFS for CACHE_THROUGH; THROUGH goes to the UFS
// through the primary only) as one stream or, with o.Parallel above 1, as
// parts sent in parallel, and publishes the version once every owner has
// committed it with the right checksum.
func (f *Files) Put(ctx context.Context, path string, r io.Reader, size int64, o PutOptions) (*cairnv1.File, error) {
	if o.WriteType == cairnv1.WriteType_WRITE_TYPE_UNSPECIFIED {
		o.WriteType = cairnv1.WriteType_WRITE_TYPE_MUST_CACHE
	}
	if size < 0 {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("size %d is negative", size))
	}
	parts, err := o.multipart(size)
	if err != nil {
		return nil, err
	}
	pw, err := Call(ctx, f.c, func(ctx context.Context, s Services) (*cairnv1.PendingWrite, error) {
		resp, err := s.Namespace.CreateFile(ctx, connect.NewRequest(&cairnv1.CreateFileRequest{
			Path: path, WriteType: o.WriteType, Replication: o.Replication, Overwrite: o.Overwrite}))
		if err != nil {
			return nil, err
		}
		return resp.Msg.GetWrite(), nil
	})
	if err != nil {
		return nil, err
	}
	owners, _, err := f.owners(ctx, pw.GetPath(), pw.GetReplication())
	if err != nil {
		return nil, err
	}
	// THROUGH caches nowhere, so it goes to the primary alone.
	if o.WriteType == cairnv1.WriteType_WRITE_TYPE_THROUGH {
		owners = owners[:1]
	}
	wd := watch(ctx, "write "+pw.GetPath(), owners, o.StallTimeout)
	defer wd.cancel(nil)
	header := &cairnv1.WriteHeader{
		Identity:  &cairnv1.FileIdentity{Path: pw.GetPath(), Version: pw.GetVersion(), Length: uint64(size), Etag: o.ETag, Metadata: o.Metadata},
		WriteType: o.WriteType, Pinned: pw.GetPinned(),
		Unpersisted:  o.WriteType == cairnv1.WriteType_WRITE_TYPE_ASYNC_THROUGH,
		ChecksumLast: true,
	}
	// The primary owner also writes the UFS for CACHE_THROUGH and THROUGH.
	headers := make([]*cairnv1.WriteHeader, len(owners))
	for i := range owners {
		headers[i] = header
		if i == 0 && (o.WriteType == cairnv1.WriteType_WRITE_TYPE_CACHE_THROUGH || o.WriteType == cairnv1.WriteType_WRITE_TYPE_THROUGH) {
			headers[i] = proto.CloneOf(header)
			headers[i].Through = true
			headers[i].NoCache = o.WriteType == cairnv1.WriteType_WRITE_TYPE_THROUGH
		}
	}
	send := f.sendStream
	if parts {
		send = f.sendParts
	}
	sum, ufsMtime, err := send(wd, owners, headers, r, size, o)
	if err != nil {
		return nil, wd.stalled(err)
	}
	return Call(ctx, f.c, func(ctx context.Context, s Services) (*cairnv1.File, error) {
		resp, err := s.Namespace.CompleteFile(ctx, connect.NewRequest(&cairnv1.CompleteFileRequest{
			Path: pw.GetPath(), Version: pw.GetVersion(), Length: uint64(size), Checksum: sum, Etag: o.ETag, Metadata: o.Metadata,
			UfsMtime: ufsMtime}))
		if err != nil {
			return nil, err
		}
		return resp.Msg.GetFile(), nil
	})
}

// sendStream sends the file to every owner as one Write stream each and
// returns its checksum and, when the primary wrote the UFS, the UFS
// file's modification time.
func (f *Files) sendStream(wd *watchdog, owners []owner, headers []*cairnv1.WriteHeader, r io.Reader, size int64, o PutOptions) (uint64, *timestamppb.Timestamp, error) {
	streams := make([]*connect.ClientStreamForClient[cairnv1.WriteRequest, cairnv1.WriteResponse], len(owners))
	for i, ow := range owners {
		wd.sendingTo(i)
		streams[i] = f.worker(ow.addr).Write(wd.ctx)
		if err := streams[i].Send(&cairnv1.WriteRequest{Part: &cairnv1.WriteRequest_Header{Header: headers[i]}}); err != nil {
			return 0, nil, ownerErr(streams[i], ow, err)
		}
	}
	h := xxhash.New()
	buf := make([]byte, chunkSize)
	var sent int64
	for sent < size {
		n, err := io.ReadFull(r, buf[:min(int64(len(buf)), size-sent)])
		if n > 0 {
			h.Write(buf[:n])
			for i, st := range streams {
				wd.sendingTo(i)
				if err := st.Send(&cairnv1.WriteRequest{Part: &cairnv1.WriteRequest_Chunk{Chunk: buf[:n]}}); err != nil {
					return 0, nil, ownerErr(st, owners[i], err)
				}
				wd.progressed()
			}
			sent += int64(n)
			if o.Progress != nil {
				o.Progress(sent)
			}
		}
		if err != nil {
			return 0, nil, sourceErr(err, sent, size)
		}
	}
	sum := h.Sum64()
	var ufsMtime *timestamppb.Timestamp
	for i, st := range streams {
		wd.sendingTo(i)
		if err := st.Send(&cairnv1.WriteRequest{Part: &cairnv1.WriteRequest_Checksum{Checksum: sum}}); err != nil {
			return 0, nil, ownerErr(st, owners[i], err)
		}
		resp, err := st.CloseAndReceive()
		if err != nil {
			return 0, nil, fmt.Errorf("worker %s (%s): %w", owners[i].id, owners[i].addr, err)
		}
		wd.progressed()
		if headers[i].GetThrough() {
			ufsMtime = resp.Msg.GetUfsMtime()
		}
	}
	return sum, ufsMtime, nil
}

// sourceErr describes a failed read of the source after sent of size
// bytes.
func sourceErr(err error, sent, size int64) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("the source ended after %d of %d bytes", sent, size))
	}
	return fmt.Errorf("read the source: %w", err)
}

// ownerErr returns the worker's own answer when a send failed because the
// worker refused the write (Send then only says the stream is gone).
func ownerErr[Req, Res any](st *connect.ClientStreamForClient[Req, Res], ow owner, err error) error {
	if errors.Is(err, io.EOF) {
		if _, rerr := st.CloseAndReceive(); rerr != nil {
			err = rerr
		}
	}
	return fmt.Errorf("worker %s (%s): %w", ow.id, ow.addr, err)
}

// Stat returns the namespace's record of path.
func (f *Files) Stat(ctx context.Context, path string) (*cairnv1.File, error) {
	return Call(ctx, f.c, func(ctx context.Context, s Services) (*cairnv1.File, error) {
		resp, err := s.Namespace.GetFile(ctx, connect.NewRequest(&cairnv1.GetFileRequest{Path: path}))
		if err != nil {
			return nil, err
		}
		return resp.Msg.GetFile(), nil
	})
}

// GetOptions say how to read a file.
type GetOptions struct {
	// NoCache reads a file that is not cached straight from the UFS
	// through its owner, without caching it.
	NoCache bool
	// NoShortCircuit always reads through the worker's API, even when the
	// worker's block files are on a disk this process can read.
	NoShortCircuit bool
	// NoRawRead reads cached data through DataService.Read instead of the
	// worker's bulk endpoint (RawReadPath in package worker).
	NoRawRead bool
	// Progress, if set, is called with the bytes written so far and the
	// file's length.
	Progress func(done, total int64)
	// StallTimeout gives up on an owner that has sent no byte or answer
	// for this long, and reads the rest from the next owner: a stopped
	// worker must not hang the read. 0 means one minute; negative, never.
	StallTimeout time.Duration
}

// stallWriter counts bytes that arrived as progress, and holds the
// watchdog's clock while they are written out: a slow destination is not
// the owner's fault.
type stallWriter struct {
	w  io.Writer
	wd *watchdog
}

func (s stallWriter) Write(b []byte) (int, error) {
	release := s.wd.hold()
	defer release()
	return s.w.Write(b)
}

// progressWriter reports the bytes written through it.
type progressWriter struct {
	w     io.Writer
	done  int64
	total int64
	fn    func(done, total int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.done += int64(n)
	p.fn(p.done, p.total)
	return n, err
}

// Get writes the current version of path to w, reading from its owners in
// order and resuming on the next owner where one fails; when none could
// serve it and the cluster map has moved on meanwhile, it tries once more
// under the new map. A file the
// namespace lacks but the UFS has is loaded into the namespace first; a
// file no owner caches is read by its owner from the UFS (and cached,
// unless NoCache).
func (f *Files) Get(ctx context.Context, path string, w io.Writer, o GetOptions) (*cairnv1.File, error) {
	file, err := f.Stat(ctx, path)
	if connect.CodeOf(err) == connect.CodeNotFound {
		file, err = Call(ctx, f.c, func(ctx context.Context, s Services) (*cairnv1.File, error) {
			r, err := s.Namespace.LoadFile(ctx, connect.NewRequest(&cairnv1.LoadFileRequest{Path: path}))
			if err != nil {
				return nil, err
			}
			return r.Msg.GetFile(), nil
		})
	}
	if err != nil {
		return nil, err
	}
	if o.Progress != nil {
		w = &progressWriter{w: w, total: int64(file.GetLength()), fn: o.Progress}
	}
	got, used, err := f.read(ctx, file, w, o, 0)
	if err == nil {
		return file, nil
	}
	// If the map moved on meanwhile (a worker left or joined), the owners
	// may be others now: go on once more under the new map.
	_, epoch, merr := f.owners(ctx, file.GetPath(), file.GetReplication())
	if code := connect.CodeOf(err); merr != nil || epoch == used || (code != connect.CodeNotFound && code != connect.CodeUnavailable) {
		return nil, err
	}
	if _, _, err := f.read(ctx, file, w, o, got); err != nil {
		return nil, err
	}
	return file, nil
}

// read copies file from off to w from its owners; it returns the bytes
// written and the epoch whose owners it asked.
func (f *Files) read(ctx context.Context, file *cairnv1.File, w io.Writer, o GetOptions, off uint64) (uint64, uint64, error) {
	owners, epoch, err := f.owners(ctx, file.GetPath(), file.GetReplication())
	if err != nil {
		return 0, 0, err
	}
	start := off
	var errs []error
	for _, ow := range owners {
		if off == file.GetLength() && off > 0 {
			break
		}
		n, done, err := f.readFrom(ctx, ow, file, off, w, o)
		off += n
		if done {
			return off - start, epoch, nil
		}
		var we destErr
		if errors.As(err, &we) || ctx.Err() != nil {
			return off - start, epoch, err // another owner cannot help
		}
		errs = append(errs, fmt.Errorf("%s: %w", ow.id, err))
	}
	// NotFound when every owner said so; DataLoss when one found the only
	// copies untrustworthy or gone (retrying cannot help); else Unavailable.
	code := connect.CodeNotFound
	for _, e := range errs {
		switch c := connect.CodeOf(e); {
		case c == connect.CodeDataLoss:
			code = connect.CodeDataLoss
		case c != connect.CodeNotFound && code != connect.CodeDataLoss:
			code = connect.CodeUnavailable
		}
	}
	return off - start, epoch, connect.NewError(code, fmt.Errorf("%s version %d: no owner under epoch %d could serve it: %w",
		file.GetPath(), file.GetVersion(), epoch, errors.Join(errs...)))
}

// readFrom reads file from off to w from one owner, the fastest way it
// can (short-circuit, the bulk endpoint, then DataService.Read), under a
// watchdog that gives up on an owner that stops sending. It returns the
// bytes written, whether it reached the end, and why not.
func (f *Files) readFrom(ctx context.Context, ow owner, file *cairnv1.File, off uint64, w io.Writer, o GetOptions) (uint64, bool, error) {
	wd := watch(ctx, "read "+file.GetPath(), []owner{ow}, o.StallTimeout)
	defer wd.cancel(nil)
	ctx, w = wd.ctx, stallWriter{w: w, wd: wd}
	start := off
	if !o.NoShortCircuit {
		n, done := f.shortCircuit(ctx, ow, file, off, w)
		off += n
		if done {
			return off - start, true, nil
		}
	}
	if !o.NoRawRead && !o.NoCache {
		n, done := f.rawRead(ctx, ow, file, off, w)
		off += n
		if done {
			return off - start, true, nil
		}
	}
	if err := context.Cause(ctx); err != nil {
		return off - start, false, wd.stalled(err)
	}
	stream, err := f.worker(ow.addr).Read(ctx, connect.NewRequest(&cairnv1.ReadRequest{
		Path: file.GetPath(), Version: file.GetVersion(), Offset: off, UfsFallback: file, NoCache: o.NoCache}))
	if err != nil {
		return off - start, false, wd.stalled(err)
	}
	defer stream.Close()
	for stream.Receive() {
		n, werr := w.Write(stream.Msg().GetChunk())
		off += uint64(n)
		if werr != nil {
			return off - start, false, destErr{werr}
		}
	}
	if err := stream.Err(); err != nil {
		return off - start, false, wd.stalled(err)
	}
	return off - start, true, nil
}

// destErr is a failure to write what was read to the caller's writer.
type destErr struct{ error }

func (e destErr) Unwrap() error { return e.error }

// List returns the files at or under prefix, all pages.
func (f *Files) List(ctx context.Context, prefix string, fn func(*cairnv1.File) error) error {
	after := ""
	for {
		resp, err := Msg(ctx, f.c, func(ctx context.Context, s Services) (*connect.Response[cairnv1.ListFilesResponse], error) {
			return s.Namespace.ListFiles(ctx, connect.NewRequest(&cairnv1.ListFilesRequest{Prefix: prefix, After: after}))
		})
		if err != nil {
			return err
		}
		for _, file := range resp.GetFiles() {
			if err := fn(file); err != nil {
				return err
			}
		}
		if resp.GetNextAfter() == "" {
			return nil
		}
		after = resp.GetNextAfter()
	}
}

// Delete removes path (recursively with recursive) from the namespace and
// drops the cached copies its owners hold. It returns how many files the
// namespace removed.
func (f *Files) Delete(ctx context.Context, path string, recursive bool) (uint64, error) {
	var victims []*cairnv1.File
	if err := f.List(ctx, path, func(file *cairnv1.File) error {
		victims = append(victims, file)
		return nil
	}); err != nil && connect.CodeOf(err) != connect.CodeNotFound {
		return 0, err
	}
	n, err := Call(ctx, f.c, func(ctx context.Context, s Services) (uint64, error) {
		r, err := s.Namespace.DeleteFile(ctx, connect.NewRequest(&cairnv1.DeleteFileRequest{Path: path, Recursive: recursive}))
		if err != nil {
			return 0, err
		}
		return r.Msg.GetDeleted(), nil
	})
	if err != nil {
		return 0, err
	}
	ownersOf, _, err := f.ownersOf(ctx)
	if err != nil {
		return n, nil // the namespace no longer has them; cleanup removes the stale copies
	}
	for _, file := range victims {
		for _, ow := range ownersOf(file.GetPath(), file.GetReplication()) {
			f.worker(ow.addr).Delete(ctx, connect.NewRequest(&cairnv1.DataServiceDeleteRequest{Path: file.GetPath(), Version: file.GetVersion()}))
		}
	}
	return n, nil
}

// shortCircuit reads file from off straight out of the owner's block files
// when they are on a disk this process can read: it asks the owner where
// the copy lives, checks the folder, and copies block after block. It
// returns the bytes written and whether it reached the end; anything
// amiss (not cached, another disk, a block evicted meanwhile) leaves the
// rest to the API.
func (f *Files) shortCircuit(ctx context.Context, ow owner, file *cairnv1.File, off uint64, w io.Writer) (uint64, bool) {
	r, err := f.worker(ow.addr).Stat(ctx, connect.NewRequest(&cairnv1.StatRequest{Paths: []string{file.GetPath()}}))
	if err != nil || len(r.Msg.GetFiles()) != 1 {
		return 0, false
	}
	cf := r.Msg.GetFiles()[0]
	id := cf.GetIdentity()
	if id.GetVersion() != file.GetVersion() || id.GetLength() != file.GetLength() || cf.GetLocalDir() == "" || cf.GetBlockSize() == 0 {
		return 0, false
	}
	if _, err := os.Stat(cf.GetLocalDir()); err != nil {
		return 0, false // another machine's disk
	}
	var n uint64
	bs := cf.GetBlockSize()
	buf := make([]byte, 1<<20)
	for pos := off; pos < file.GetLength(); {
		b, in := pos/bs, pos%bs
		want := min(bs-in, file.GetLength()-pos)
		blk, err := os.Open(filepath.Join(cf.GetLocalDir(), strconv.FormatUint(b, 10)))
		if err != nil {
			return n, false
		}
		fi, err := blk.Stat()
		if err != nil || uint64(fi.Size()) < in+want {
			blk.Close()
			return n, false
		}
		m, err := io.CopyBuffer(writerOnly{w}, io.NewSectionReader(blk, int64(in), int64(want)), buf)
		blk.Close()
		n += uint64(m)
		pos += uint64(m)
		if err != nil || uint64(m) != want {
			return n, false
		}
	}
	return n, true
}

// rawRead reads file from off through the owner's bulk endpoint, which
// serves cached copies without message framing (and with sendfile). It
// returns the bytes written and whether it reached the end; a copy that is
// not cached there, or a cut connection, leaves the rest to Read.
func (f *Files) rawRead(ctx context.Context, ow owner, file *cairnv1.File, off uint64, w io.Writer) (uint64, bool) {
	q := url.Values{}
	q.Set("path", file.GetPath())
	q.Set("version", strconv.FormatUint(file.GetVersion(), 10))
	q.Set("offset", strconv.FormatUint(off, 10))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ow.addr+"/data/v1/read?"+q.Encode(), nil)
	if err != nil {
		return 0, false
	}
	// With the file's record, the owner reads a miss from the UFS here too.
	if b, err := proto.Marshal(file); err == nil && len(b) < 6<<10 {
		req.Header.Set("X-Cairn-File", base64.StdEncoding.EncodeToString(b))
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Cairn-Version") != strconv.FormatUint(file.GetVersion(), 10) {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return 0, false
	}
	want := file.GetLength() - off
	// Large reads from the socket; hide w's ReadFrom (io.Discard's and
	// others' use small buffers).
	n, err := io.CopyBuffer(writerOnly{w}, resp.Body, make([]byte, 1<<20))
	return uint64(n), err == nil && uint64(n) == want
}

// writerOnly hides every method of a writer but Write.
type writerOnly struct{ io.Writer }
