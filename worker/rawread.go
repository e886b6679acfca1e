package worker

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/cairnhq/cairn/blockstore"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// RawReadPath is the worker's bulk read endpoint beside the Connect API:
//
//	GET /data/v1/read?path=P&version=V[&offset=O][&length=L][&no_partial_caching=true]
//
// It answers with the bytes of a cached copy and nothing else (no message
// framing), so the kernel can send block files to the socket without
// copying them through the process (sendfile). It serves only what is
// cached: 404 otherwise (then DataService.Read, which can read the UFS).
// The X-Cairn-Version, X-Cairn-Length and X-Cairn-Checksum headers
// describe the copy.
const RawReadPath = "/data/v1/read"

// FileHeader carries, on a bulk read, the namespace's record of the file
// (a base64 cairn.v1.File): with it, a copy that is not cached is read
// from the UFS, served and cached, as DataService.Read does with
// ufs_fallback.
const FileHeader = "X-Cairn-File"

// rawReadThrough serves a miss on the bulk endpoint.
func (s *dataService) rawReadThrough(w http.ResponseWriter, r *http.Request, fh string, off, length uint64) {
	raw, err := base64.StdEncoding.DecodeString(fh)
	f := &cairnv1.File{}
	if err == nil {
		err = proto.Unmarshal(raw, f)
	}
	if err != nil || f.GetPath() != r.URL.Query().Get("path") {
		http.Error(w, FileHeader+" does not describe the file asked for", http.StatusBadRequest)
		return
	}
	if s.w.skipPartialFill(f, off, length, r.URL.Query().Get("no_partial_caching") == "true") {
		// Not counted as a miss: the client goes on to Read, which serves
		// the range from the UFS without caching.
		http.Error(w, "partial caching is off: read part of a file that is not cached with DataService.Read", http.StatusNotFound)
		return
	}
	s.w.data.reads.WithLabelValues("miss").Inc()
	size := f.GetLength()
	from, to, err := span(f.GetPath(), off, length, size)
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestedRangeNotSatisfiable)
		return
	}
	end := uint64(to)
	started := false
	start := func() {
		if started {
			return
		}
		started = true
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Length", strconv.FormatUint(end-off, 10))
		h.Set("X-Cairn-Version", strconv.FormatUint(f.GetVersion(), 10))
		h.Set("X-Cairn-Length", strconv.FormatUint(size, 10))
		w.WriteHeader(http.StatusOK)
	}
	err = s.w.ufs.readThrough(r.Context(), f, from, to, func(b []byte) error {
		start()
		_, err := w.Write(b)
		s.w.data.readBytes.Add(float64(len(b)))
		return err
	})
	switch {
	case err == nil:
		start() // an empty range
	case errors.Is(err, errCached) && !started:
		s.rawRead(w, r) // filled meanwhile by another reader: serve the cache
	case started:
		panic(http.ErrAbortHandler) // the client sees a short body
	default:
		http.Error(w, err.Error(), httpStatus(err))
	}
}

// httpStatus maps a Connect error to an HTTP status for the bulk endpoint.
func httpStatus(err error) int {
	switch connect.CodeOf(err) {
	case connect.CodeNotFound:
		return http.StatusNotFound
	case connect.CodeInvalidArgument:
		return http.StatusBadRequest
	case connect.CodeDataLoss:
		return http.StatusConflict
	case connect.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func (s *dataService) rawRead(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	num := func(name string) (uint64, error) {
		v := q.Get(name)
		if v == "" {
			return 0, nil
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s=%q is not a number", name, v)
		}
		return n, nil
	}
	version, err1 := num("version")
	off, err2 := num("offset")
	length, err3 := num("length")
	if err := errors.Join(err1, err2, err3); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rd, err := s.w.store.Open(q.Get("path"), version)
	if errors.Is(err, blockstore.ErrNotCached) {
		if fh := r.Header.Get(FileHeader); fh != "" {
			s.rawReadThrough(w, r, fh, off, length)
			return
		}
		// Not counted as a miss: the client goes on to Read, which counts it.
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.w.data.reads.WithLabelValues("hit").Inc()
	s.w.published(q.Get("path"), version)
	e := rd.Entry()
	size := uint64(e.Size)
	_, to, err := span(e.Path, off, length, size)
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestedRangeNotSatisfiable)
		return
	}
	end := uint64(to)
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatUint(end-off, 10))
	h.Set("X-Cairn-Version", strconv.FormatUint(e.Version, 10))
	h.Set("X-Cairn-Length", strconv.FormatUint(size, 10))
	h.Set("X-Cairn-Checksum", strconv.FormatUint(e.Checksum, 16))
	w.WriteHeader(http.StatusOK)
	dir := s.w.store.Dir(e.Path, e.Version)
	bs := uint64(e.BlockSize)
	for pos := off; pos < end; {
		b, in := pos/bs, pos%bs
		n := min(bs-in, end-pos)
		f, err := os.Open(filepath.Join(dir, strconv.FormatUint(b, 10)))
		if err != nil {
			// Evicted meanwhile: cut the connection; the client sees a short
			// body and reads the rest another way.
			panic(http.ErrAbortHandler)
		}
		if _, err := f.Seek(int64(in), io.SeekStart); err != nil {
			f.Close()
			panic(http.ErrAbortHandler)
		}
		// An *io.LimitedReader over an *os.File lets the server use sendfile.
		m, err := io.Copy(w, &io.LimitedReader{R: f, N: int64(n)})
		f.Close()
		s.w.data.readBytes.Add(float64(m))
		if err != nil || uint64(m) != n {
			panic(http.ErrAbortHandler)
		}
		pos += n
	}
}
