package persistence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/cespare/xxhash/v2"
)

// s3Reader reads one object: Read streams it with one GET (resumed where
// it broke, a few times), ReadAt asks for each range on its own.
type s3Reader struct {
	s    *S3
	ctx  context.Context
	key  string
	info Info

	mu      sync.Mutex // Read's stream
	body    io.ReadCloser
	pos     int64
	resumes int
}

// maxResumes bounds how often a sequential read picks up a broken stream.
const maxResumes = 3

func (r *s3Reader) Info() Info { return r.info }

// get asks for bytes [from, to) of the opened object version.
func (r *s3Reader) get(ctx context.Context, from, to int64) (io.ReadCloser, error) {
	in := &s3.GetObjectInput{Bucket: &r.s.bucket, Key: &r.key, Range: aws.String(fmt.Sprintf("bytes=%d-%d", from, to-1))}
	if r.info.VersionID != "" {
		in.VersionId = aws.String(r.info.VersionID)
	} else if r.info.ETag != "" {
		in.IfMatch = aws.String(`"` + r.info.ETag + `"`)
	}
	out, err := r.s.c.GetObject(ctx, in)
	if err != nil {
		return nil, r.s.fail("read", r.info.Path, err)
	}
	return out.Body, nil
}

func (r *s3Reader) Read(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		if r.pos >= r.info.Size {
			return 0, io.EOF
		}
		if len(b) == 0 {
			return 0, nil
		}
		if r.body == nil {
			body, err := r.get(r.ctx, r.pos, r.info.Size)
			if err != nil {
				return 0, err
			}
			r.body = body
		}
		n, err := r.body.Read(b)
		r.pos += int64(n)
		switch {
		case err == nil || (errors.Is(err, io.EOF) && r.pos == r.info.Size):
			return n, nil
		case errors.Is(err, io.EOF):
			err = io.ErrUnexpectedEOF
		}
		r.body.Close()
		r.body = nil
		if r.resumes >= maxResumes || r.ctx.Err() != nil {
			return n, r.s.fail("read", r.info.Path, err)
		}
		r.resumes++ // the stream broke: go on from where it stopped
		if n > 0 {
			return n, nil
		}
	}
}

// Seek moves where Read goes on; the next Read asks for the rest of the
// object from there.
func (r *s3Reader) Seek(offset int64, whence int) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch whence {
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.info.Size
	}
	if offset < 0 {
		return r.pos, fmt.Errorf("UFS %s: seek %s to %d", r.s.label, r.info.Path, offset)
	}
	if offset != r.pos && r.body != nil {
		r.body.Close()
		r.body = nil
	}
	r.pos = offset
	return offset, nil
}

func (r *s3Reader) ReadAt(b []byte, off int64) (int, error) {
	if off >= r.info.Size {
		return 0, io.EOF
	}
	want := min(int64(len(b)), r.info.Size-off)
	body, err := r.get(r.ctx, off, off+want)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	n, err := io.ReadFull(body, b[:want])
	if err != nil {
		return n, r.s.fail("read", r.info.Path, err)
	}
	if want < int64(len(b)) {
		return n, io.EOF
	}
	return n, nil
}

func (r *s3Reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.body != nil {
		r.body.Close()
		r.body = nil
	}
	return nil
}

// s3Writer writes one object. Bytes gather in a part buffer; a file that
// fits one part is sent as one PUT at Commit. A larger one becomes a
// multipart upload: each full part is sent as soon as it fills, up to
// ParallelParts at once, so memory stays at most (ParallelParts+1) parts
// whatever the size. Commit (after Flush has sent the last part) completes
// the upload: only then is there an object, whole. Abort, or a writer that
// dies, leaves none.
type s3Writer struct {
	s      *S3
	ctx    context.Context
	cancel context.CancelFunc
	path   string
	key    string

	buf   []byte // the part being filled
	n     int64
	sum   *xxhash.Digest
	free  chan []byte   // part buffers back from their upload
	slots chan struct{} // one per part in flight
	made  int           // part buffers allocated

	upload *string // the multipart upload's id, once started
	next   int32   // the next part's number
	wg     sync.WaitGroup

	mu    sync.Mutex
	parts []types.CompletedPart
	err   error
	done  bool
}

func newS3Writer(ctx context.Context, s *S3, p string) *s3Writer {
	ctx, cancel := context.WithCancel(ctx)
	return &s3Writer{s: s, ctx: ctx, cancel: cancel, path: p, key: s.key(p), sum: xxhash.New(),
		free: make(chan []byte, s.parallel+1), slots: make(chan struct{}, s.parallel), next: 1}
}

func (w *s3Writer) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *s3Writer) setErr(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
		w.cancel() // the parts in flight are of no use now
	}
}

// room makes sure the part buffer can take more bytes: the first part
// grows as it fills (a small file costs little memory), the others are
// whole parts.
func (w *s3Writer) room() {
	switch {
	case len(w.buf) < cap(w.buf):
	case w.buf != nil: // the first part, grown until it is a whole one
		nb := make([]byte, len(w.buf), min(2*cap(w.buf), int(w.s.partSize)))
		copy(nb, w.buf)
		w.buf = nb
	case w.made == 0:
		w.buf = make([]byte, 0, min(64<<10, int(w.s.partSize)))
		w.made++
	case w.made <= w.s.parallel:
		w.buf = make([]byte, 0, w.s.partSize)
		w.made++
	default:
		w.buf = <-w.free // every buffer is in flight: wait for one
	}
}

func (w *s3Writer) take(b []byte) {
	w.sum.Write(b)
	w.n += int64(len(b))
}

func (w *s3Writer) Write(b []byte) (int, error) {
	done := 0
	for done < len(b) {
		if err := w.failed(); err != nil {
			return done, err
		}
		w.room()
		k := min(cap(w.buf)-len(w.buf), len(b)-done)
		w.buf = append(w.buf, b[done:done+k]...)
		w.take(b[done : done+k])
		done += k
		if int64(len(w.buf)) == w.s.partSize {
			w.send()
		}
	}
	return done, nil
}

// ReadFrom reads r into the part buffers directly, sending each part as
// it fills.
func (w *s3Writer) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for {
		if err := w.failed(); err != nil {
			return total, err
		}
		w.room()
		n, err := r.Read(w.buf[len(w.buf):cap(w.buf)])
		w.take(w.buf[len(w.buf) : len(w.buf)+n])
		w.buf = w.buf[:len(w.buf)+n]
		total += int64(n)
		if int64(len(w.buf)) == w.s.partSize {
			w.send()
		}
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// send starts the upload of the full part buffer (starting the multipart
// upload first), waiting for a slot when ParallelParts are in flight.
func (w *s3Writer) send() {
	if w.upload == nil {
		out, err := w.s.c.CreateMultipartUpload(w.ctx, &s3.CreateMultipartUploadInput{Bucket: &w.s.bucket, Key: &w.key})
		if err != nil {
			w.setErr(w.s.fail("start the upload of", w.path, err))
			return
		}
		w.upload = out.UploadId
	}
	select {
	case w.slots <- struct{}{}:
	case <-w.ctx.Done():
		w.setErr(w.s.fail("upload", w.path, w.ctx.Err()))
		return
	}
	buf, num := w.buf, w.next
	w.buf, w.next = nil, w.next+1
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		out, err := w.s.c.UploadPart(w.ctx, &s3.UploadPartInput{Bucket: &w.s.bucket, Key: &w.key, UploadId: w.upload,
			PartNumber: aws.Int32(num), Body: bytes.NewReader(buf), ContentLength: aws.Int64(int64(len(buf)))})
		if err != nil {
			w.setErr(w.s.fail(fmt.Sprintf("upload part %d of", num), w.path, err))
		} else {
			w.mu.Lock()
			w.parts = append(w.parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)})
			w.mu.Unlock()
		}
		<-w.slots
		w.free <- buf[:0]
	}()
}

func (w *s3Writer) Written() (int64, uint64, error) {
	return w.n, w.sum.Sum64(), w.failed()
}

// Flush sends what is left of a multipart upload and waits for every part:
// then Commit is one short request. (A file of one part is sent by Commit.)
func (w *s3Writer) Flush() error {
	if w.upload != nil && len(w.buf) > 0 {
		w.send()
	}
	w.wg.Wait()
	return w.failed()
}

// Commit publishes the object and describes it (after a HEAD, for its
// modification time).
func (w *s3Writer) Commit() (Info, error) {
	if w.done {
		return Info{}, fmt.Errorf("UFS write of %s already ended", w.path)
	}
	if err := w.Flush(); err != nil {
		w.Abort()
		return Info{}, err
	}
	w.done = true
	defer w.cancel()
	var version *string
	if w.upload == nil {
		out, err := w.s.c.PutObject(w.ctx, &s3.PutObjectInput{Bucket: &w.s.bucket, Key: &w.key,
			Body: bytes.NewReader(w.buf), ContentLength: aws.Int64(int64(len(w.buf)))})
		if err != nil {
			return Info{}, w.s.fail("put", w.path, err)
		}
		version = out.VersionId
	} else {
		slices.SortFunc(w.parts, func(a, b types.CompletedPart) int { return int(aws.ToInt32(a.PartNumber) - aws.ToInt32(b.PartNumber)) })
		out, err := w.s.c.CompleteMultipartUpload(w.ctx, &s3.CompleteMultipartUploadInput{Bucket: &w.s.bucket, Key: &w.key,
			UploadId: w.upload, MultipartUpload: &types.CompletedMultipartUpload{Parts: w.parts}})
		if err != nil {
			w.abortUpload()
			return Info{}, w.s.fail("complete the upload of", w.path, err)
		}
		version = out.VersionId
	}
	w.buf = nil
	info, err := w.s.head(w.ctx, w.path, aws.ToString(version))
	if err != nil {
		return Info{}, err
	}
	if info.Size != w.n {
		return Info{}, w.s.fail("check the length of", w.path, fmt.Errorf("the object holds %d bytes, %d were written", info.Size, w.n))
	}
	return info, nil
}

func (w *s3Writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.cancel()
	w.wg.Wait()
	w.buf = nil
	if w.upload != nil {
		return w.abortUpload()
	}
	return nil
}

// abortUpload drops the parts of the multipart upload, on a context of its
// own: the writer's may have ended.
func (w *s3Writer) abortUpload() error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), 30*time.Second)
	defer cancel()
	_, err := w.s.c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &w.s.bucket, Key: &w.key, UploadId: w.upload})
	var nu *types.NoSuchUpload
	if err != nil && !errors.As(err, &nu) {
		return w.s.fail("abort the upload of", w.path, err)
	}
	return nil
}
