package client

import (
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
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

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
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.c.scheme+"://"+ow.addr+"/data/v1/read?"+q.Encode(), nil)
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
