package worker

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"buf.build/go/protovalidate"
	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/cairnhq/cairn/blockstore"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// RawWritePath is the workers' bulk endpoint for rebalance copies, beside
// DataService.Write:
//
//	POST /data/v1/write
//	X-Cairn-Write: <base64 cairn.v1.WriteHeader>
//	Content-Length: <identity.length>
//
//	<the file's bytes>
//
// The header must carry the identity's checksum and a rebalance epoch
// (and neither through nor no_cache). The body carries the bytes alone, no
// message framing, so the sender's kernel can send block files without
// copying them through the process (sendfile), and the receiver writes
// them around its page cache. The answer is 200 with a binary
// cairn.v1.WriteResponse (Content-Type application/proto); an error is
// another status with the message as text and the Connect code's name in
// X-Cairn-Code. Identities are checked as for Write: nothing is kept
// unless length and checksum match.
const RawWritePath = "/data/v1/write"

// Headers of the bulk write endpoint.
const (
	WriteHeaderHeader = "X-Cairn-Write"
	CodeHeader        = "X-Cairn-Code"
)

// rawWrite serves RawWritePath.
func (s *dataService) rawWrite(w http.ResponseWriter, r *http.Request) {
	fail := func(err error) {
		code := connect.CodeOf(err)
		w.Header().Set(CodeHeader, code.String())
		http.Error(w, err.Error(), httpStatus(err))
	}
	if r.Method != http.MethodPost {
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	h := &cairnv1.WriteHeader{}
	raw, err := base64.StdEncoding.DecodeString(r.Header.Get(WriteHeaderHeader))
	if err == nil {
		err = proto.Unmarshal(raw, h)
	}
	if err == nil {
		err = protovalidate.Validate(h)
	}
	if err != nil {
		fail(connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("%s does not hold a valid base64 cairn.v1.WriteHeader: %w", WriteHeaderHeader, err)))
		return
	}
	id := h.GetIdentity()
	switch {
	case h.GetRebalanceEpoch() == 0 || h.GetThrough() || h.GetNoCache() || h.GetChecksumLast():
		fail(connect.NewError(connect.CodeInvalidArgument, errors.New("the bulk write endpoint takes rebalance copies only (rebalance_epoch set, the checksum in the identity, no through, no no_cache, no checksum_last): use DataService.Write")))
		return
	case r.ContentLength != int64(id.GetLength()):
		fail(connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("Content-Length %d differs from the identity's length %d", r.ContentLength, id.GetLength())))
		return
	}
	p, bid, fo, err := fromHeader(h)
	if err != nil {
		fail(err)
		return
	}
	cw, err := s.w.store.Create(bid, fo)
	if err != nil {
		fail(storeErr(err))
		return
	}
	defer cw.Abort()
	cw.Direct() // nobody waits to read a rebalance's copy
	body := &sourceReader{r: r.Body}
	n, err := cw.ReadFrom(body)
	switch {
	case err == nil:
	case body.err != nil:
		fail(connect.NewError(connect.CodeUnavailable, fmt.Errorf("receive %s: %w", p, body.err)))
		return
	default:
		fail(storeErr(err)) // this worker's disk or quota, not the sender
		return
	}
	s.w.data.writtenBytes.Add(float64(n))
	file, already, err := s.commitCached(cw, p, id, id.GetChecksum(), h.GetRebalanceEpoch())
	if err != nil {
		fail(err)
		return
	}
	out, err := proto.Marshal(&cairnv1.WriteResponse{File: file, AlreadyHeld: already})
	if err != nil {
		fail(connect.NewError(connect.CodeInternal, err))
		return
	}
	w.Header().Set("Content-Type", "application/proto")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.Write(out)
}

// sourceReader remembers its reader's error, to tell a cut connection
// from a failing disk.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		s.err = err
	}
	return n, err
}

// errNoBulkWrite: the target does not serve RawWritePath.
var errNoBulkWrite = errors.New("the target has no bulk write endpoint")

// rawSend sends e, a cached copy, to the worker at target through its bulk
// write endpoint as a rebalance's copy of epoch; the body is the block
// files themselves, so a file of one block goes out with sendfile.
func (w *Worker) rawSend(r *http.Request, e blockstore.Entry, h *cairnv1.WriteHeader) (*cairnv1.WriteResponse, error) {
	dir := w.store.Dir(e.Path, e.Version)
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	var readers []io.Reader
	for b := int64(0); b*e.BlockSize < e.Size; b++ {
		f, err := os.Open(filepath.Join(dir, strconv.FormatInt(b, 10)))
		if err != nil {
			return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("%w: block %d of %s: %v", blockstore.ErrNotCached, b, e.Path, err))
		}
		files = append(files, f)
		readers = append(readers, &io.LimitedReader{R: f, N: min(e.BlockSize, e.Size-b*e.BlockSize)})
	}
	raw, err := proto.Marshal(h)
	if err != nil {
		return nil, err
	}
	r.Header.Set(WriteHeaderHeader, base64.StdEncoding.EncodeToString(raw))
	r.Header.Set("Content-Type", "application/octet-stream")
	r.ContentLength = e.Size
	switch len(files) {
	case 0:
		r.Body = http.NoBody
	case 1:
		r.Body = files[0] // an *os.File body: the transport can use sendfile
		files = nil       // the transport closes it
	default:
		r.Body = io.NopCloser(io.MultiReader(readers...))
	}
	resp, err := w.peerClient().Do(r)
	if err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, err)
	}
	if (resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed) && resp.Header.Get(CodeHeader) == "" {
		// A worker of an older release, without this endpoint.
		return nil, errNoBulkWrite
	}
	if resp.StatusCode != http.StatusOK {
		code := connect.CodeUnknown
		if err := code.UnmarshalText([]byte(resp.Header.Get(CodeHeader))); err != nil {
			code = connect.CodeUnknown
		}
		return nil, connect.NewError(code, errors.New(string(bytes.TrimSpace(body))))
	}
	out := &cairnv1.WriteResponse{}
	if err := proto.Unmarshal(body, out); err != nil {
		return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("the answer of %s: %w", RawWritePath, err))
	}
	return out, nil
}
