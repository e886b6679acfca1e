package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"connectrpc.com/connect"
	"github.com/cespare/xxhash/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// chunkSize is how much data one Write message carries.
const chunkSize = 1 << 20

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
		// Owners keep the version the namespace publishes until this one
		// is: a write that never completes takes nothing with it.
		NewVersion: true, Replaces: pw.GetReplaces(),
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
	sum, uo, err := send(wd, owners, headers, r, size, o)
	if err != nil {
		return nil, wd.stalled(err)
	}
	return Call(ctx, f.c, func(ctx context.Context, s Services) (*cairnv1.File, error) {
		resp, err := s.Namespace.CompleteFile(ctx, connect.NewRequest(&cairnv1.CompleteFileRequest{
			Path: pw.GetPath(), Version: pw.GetVersion(), Length: uint64(size), Checksum: sum, Etag: o.ETag, Metadata: o.Metadata,
			UfsMtime: uo.mtime, UfsEtag: uo.etag, UfsVersionId: uo.version}))
		if err != nil {
			return nil, err
		}
		return resp.Msg.GetFile(), nil
	})
}

// ufsObject is what the primary owner reports of the UFS copy it wrote
// (CACHE_THROUGH, THROUGH): its modification time, and on an object store
// its ETag and version id, which the namespace records.
type ufsObject struct {
	mtime         *timestamppb.Timestamp
	etag, version string
}

// sendStream sends the file to every owner as one Write stream each and
// returns its checksum and, when the primary wrote the UFS, the UFS
// file's modification time.
func (f *Files) sendStream(wd *watchdog, owners []owner, headers []*cairnv1.WriteHeader, r io.Reader, size int64, o PutOptions) (uint64, ufsObject, error) {
	streams := make([]*connect.ClientStreamForClient[cairnv1.WriteRequest, cairnv1.WriteResponse], len(owners))
	for i, ow := range owners {
		wd.sendingTo(i)
		streams[i] = f.worker(ow.addr).Write(wd.ctx)
		if err := streams[i].Send(&cairnv1.WriteRequest{Part: &cairnv1.WriteRequest_Header{Header: headers[i]}}); err != nil {
			return 0, ufsObject{}, ownerErr(streams[i], ow, err)
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
					return 0, ufsObject{}, ownerErr(st, owners[i], err)
				}
				wd.progressed()
			}
			sent += int64(n)
			if o.Progress != nil {
				o.Progress(sent)
			}
		}
		if err != nil {
			return 0, ufsObject{}, sourceErr(err, sent, size)
		}
	}
	sum := h.Sum64()
	var uo ufsObject
	for i, st := range streams {
		wd.sendingTo(i)
		if err := st.Send(&cairnv1.WriteRequest{Part: &cairnv1.WriteRequest_Checksum{Checksum: sum}}); err != nil {
			return 0, ufsObject{}, ownerErr(st, owners[i], err)
		}
		resp, err := st.CloseAndReceive()
		if err != nil {
			return 0, ufsObject{}, fmt.Errorf("worker %s (%s): %w", owners[i].id, owners[i].addr, err)
		}
		wd.progressed()
		if headers[i].GetThrough() {
			uo = ufsObject{mtime: resp.Msg.GetUfsMtime(), etag: resp.Msg.GetUfsEtag(), version: resp.Msg.GetUfsVersionId()}
		}
	}
	return sum, uo, nil
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
