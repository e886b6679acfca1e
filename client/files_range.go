package client

import (
	"context"
	"errors"
	"fmt"
	"io"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// RangeOptions say how to read part of a file.
type RangeOptions struct {
	// NoCache serves a range that is not cached straight from the UFS,
	// caching nothing.
	NoCache bool
	// NoPartialCaching serves a range of a file that is not cached from
	// the UFS without caching the file, whatever the cluster setting
	// cache.partial says (with partial caching, the default, a range that
	// misses caches the whole file).
	NoPartialCaching bool
}

// ReadRange writes length bytes of the current version of path from off
// (length 0: to the end) to w, from its owners in order, resuming on the
// next owner where one fails. A range past the end is OutOfRange.
func (f *Files) ReadRange(ctx context.Context, path string, off, length uint64, w io.Writer, o RangeOptions) (*cairnv1.File, error) {
	file, err := f.Stat(ctx, path)
	if err != nil {
		return nil, err
	}
	if off > file.GetLength() {
		return nil, connect.NewError(connect.CodeOutOfRange, fmt.Errorf("%s has %d bytes: offset %d is past its end", path, file.GetLength(), off))
	}
	end := file.GetLength()
	if length > 0 {
		end = min(end, off+length)
	}
	owners, epoch, err := f.owners(ctx, file.GetPath(), file.GetReplication())
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, ow := range owners {
		n, err := f.readRangeFrom(ctx, ow, file, off, end, w, o)
		off += n
		if err == nil {
			return file, nil
		}
		var we destErr
		if errors.As(err, &we) || ctx.Err() != nil || connect.CodeOf(err) == connect.CodeOutOfRange {
			return nil, err
		}
		errs = append(errs, fmt.Errorf("%s: %w", ow.id, err))
	}
	return nil, connect.NewError(connect.CodeUnavailable, fmt.Errorf("%s version %d: no owner under epoch %d could serve bytes %d-%d: %w",
		file.GetPath(), file.GetVersion(), epoch, off, end, errors.Join(errs...)))
}

// readRangeFrom reads [off, end) of file from one owner with
// DataService.Read; it returns the bytes written.
func (f *Files) readRangeFrom(ctx context.Context, ow owner, file *cairnv1.File, off, end uint64, w io.Writer, o RangeOptions) (uint64, error) {
	if off >= end && end > 0 {
		return 0, nil
	}
	stream, err := f.worker(ow.addr).Read(ctx, connect.NewRequest(&cairnv1.ReadRequest{
		Path: file.GetPath(), Version: file.GetVersion(), Offset: off, Length: end - off, UfsFallback: file,
		NoCache: o.NoCache, NoPartialCaching: o.NoPartialCaching}))
	if err != nil {
		return 0, err
	}
	defer stream.Close()
	var n uint64
	for stream.Receive() {
		m, werr := w.Write(stream.Msg().GetChunk())
		n += uint64(m)
		if werr != nil {
			return n, destErr{werr}
		}
	}
	if err := stream.Err(); err != nil {
		return n, err
	}
	if off+n != end {
		return n, connect.NewError(connect.CodeUnavailable, fmt.Errorf("the owner sent %d of %d bytes", n, end-off))
	}
	return n, nil
}
