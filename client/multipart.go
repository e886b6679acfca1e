package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/cespare/xxhash/v2"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// completeFloorRate is the slowest rate, in bytes per second, at which a
// worker is expected to read a multipart write back (and copy it to the
// UFS) when completing it; it sets how long the client waits.
const completeFloorRate = 8 << 20

// part is a piece of the source on its way to the owners.
type part struct {
	off  int64
	data []byte
	buf  []byte // the buffer data lives in, returned when every owner has it
}

// sendParts sends the file to every owner as a multipart write: this
// goroutine reads the source into buffers (at most o.Buffers of
// o.PartSize bytes) and hashes it in order, o.Parallel senders each send
// a part to every owner, and once all parts are in, every owner reads
// the file back against the whole checksum and commits it. On failure
// the owners' sessions are aborted.
func (f *Files) sendParts(wd *watchdog, owners []owner, headers []*cairnv1.WriteHeader, r io.Reader, size int64, o PutOptions) (uint64, ufsObject, error) {
	ctx := wd.ctx
	ids := make([]string, len(owners))
	defer func() {
		// Sessions still open here belong to a write that failed.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		for i, id := range ids {
			if id != "" {
				f.worker(owners[i].addr).AbortMultipartWrite(actx, connect.NewRequest(&cairnv1.AbortMultipartWriteRequest{UploadId: id}))
			}
		}
	}()
	for i, ow := range owners {
		wd.sendingTo(i)
		resp, err := f.worker(ow.addr).StartMultipartWrite(ctx, connect.NewRequest(&cairnv1.StartMultipartWriteRequest{Header: headers[i]}))
		if err != nil {
			return 0, ufsObject{}, fmt.Errorf("worker %s (%s): %w", ow.id, ow.addr, err)
		}
		ids[i] = resp.Msg.GetUploadId()
		wd.progressed()
	}

	var (
		mu       sync.Mutex
		firstErr error
		sent     int64
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
			wd.cancel(err)
		}
		mu.Unlock()
	}
	free := make(chan []byte, o.Buffers)
	for range o.Buffers {
		free <- nil // allocated on first use
	}
	work := make(chan part)
	var wg sync.WaitGroup
	for range o.Parallel {
		wg.Go(func() {
			for p := range work {
				if err := f.sendPart(wd, owners, ids, p); err != nil {
					fail(err)
				}
				free <- p.buf
				mu.Lock()
				sent += int64(len(p.data))
				if o.Progress != nil && firstErr == nil {
					o.Progress(sent)
				}
				mu.Unlock()
			}
		})
	}
	h := xxhash.New()
	var readErr error
	for off := int64(0); off < size; {
		var buf []byte
		select {
		case buf = <-free:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		if buf == nil {
			buf = make([]byte, o.PartSize)
		}
		n, err := io.ReadFull(r, buf[:min(o.PartSize, size-off)])
		h.Write(buf[:n])
		if err != nil {
			readErr = sourceErr(err, off+int64(n), size)
			break
		}
		work <- part{off: off, data: buf[:n], buf: buf}
		off += int64(n)
	}
	close(work)
	wg.Wait()
	if readErr != nil {
		return 0, ufsObject{}, readErr
	}
	if firstErr != nil {
		return 0, ufsObject{}, firstErr
	}
	if err := context.Cause(ctx); err != nil {
		return 0, ufsObject{}, err
	}
	sum := h.Sum64()
	var uo ufsObject
	// Completing reads the whole file back (and, for CACHE_THROUGH, writes
	// the UFS copy), with no progress to show meanwhile: it runs under a
	// deadline of its own, proportional to the size, not the watchdog.
	// A negative StallTimeout waits as long as it takes.
	budget := cmp.Or(o.StallTimeout, time.Minute) + time.Duration(float64(size)/completeFloorRate*float64(time.Second))
	for i, ow := range owners {
		wd.sendingTo(i)
		release := wd.hold()
		var cctx context.Context
		var cancel context.CancelFunc
		if o.StallTimeout >= 0 {
			cctx, cancel = context.WithTimeout(ctx, budget)
		} else {
			cctx, cancel = context.WithCancel(ctx)
		}
		resp, err := f.worker(ow.addr).CompleteMultipartWrite(cctx, connect.NewRequest(&cairnv1.CompleteMultipartWriteRequest{UploadId: ids[i], Checksum: sum}))
		cancel()
		release()
		ids[i] = "" // the session ended, whatever the answer (a worker stops work on a call its client gave up)
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = connect.NewError(connect.CodeUnavailable, fmt.Errorf("did not finish checking the %d bytes within %s; it may be overloaded or stopped", size, budget.Round(time.Second)))
		}
		if err != nil {
			return 0, ufsObject{}, fmt.Errorf("worker %s (%s): %w", ow.id, ow.addr, err)
		}
		if headers[i].GetThrough() {
			uo = ufsObject{mtime: resp.Msg.GetUfsMtime(), etag: resp.Msg.GetUfsEtag(), version: resp.Msg.GetUfsVersionId()}
		}
	}
	return sum, uo, nil
}

// sendPart sends one part to every owner.
func (f *Files) sendPart(wd *watchdog, owners []owner, ids []string, p part) error {
	sum := xxhash.Sum64(p.data)
	for i, ow := range owners {
		wd.sendingTo(i)
		st := f.worker(ow.addr).WritePart(wd.ctx)
		err := st.Send(&cairnv1.WritePartRequest{Part: &cairnv1.WritePartRequest_Header{Header: &cairnv1.PartHeader{
			UploadId: ids[i], Offset: uint64(p.off), Length: uint64(len(p.data)), Checksum: sum}}})
		for at := 0; err == nil && at < len(p.data); at += chunkSize {
			err = st.Send(&cairnv1.WritePartRequest{Part: &cairnv1.WritePartRequest_Chunk{Chunk: p.data[at:min(at+chunkSize, len(p.data))]}})
			wd.progressed()
		}
		if err != nil {
			return fmt.Errorf("part at %d: %w", p.off, ownerErr(st, ow, err))
		}
		if _, err := st.CloseAndReceive(); err != nil {
			return fmt.Errorf("part at %d: worker %s (%s): %w", p.off, ow.id, ow.addr, err)
		}
		wd.progressed()
	}
	return nil
}
