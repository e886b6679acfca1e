package persistence

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what each mount's UFS is asked, per mount (its path):
//
//	cairn_ufs_requests_total{mount,op}        operations: open, read (a ranged read), create, commit, stat, walk, delete, probe
//	cairn_ufs_errors_total{mount,op,kind}     failed operations by kind (not_found, denied, throttled, unreachable, ...)
//	cairn_ufs_request_seconds{mount,op}       how long operations took
//	cairn_ufs_bytes_total{mount,direction}    bytes read from and written to the UFS
//	cairn_ufs_retries_total{mount}            requests an object store's client sent again (throttling, 5xx, dropped connections)
type Metrics struct {
	ops     *prometheus.CounterVec
	errs    *prometheus.CounterVec
	seconds *prometheus.HistogramVec
	bytes   *prometheus.CounterVec
	retries *prometheus.CounterVec
}

// NewMetrics registers the UFS metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cairn_ufs_requests_total",
			Help: "Operations asked of a mount's UFS, by mount and operation."}, []string{"mount", "op"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cairn_ufs_errors_total",
			Help: "Failed UFS operations, by mount, operation and kind (not_found, denied, no_bucket, throttled, unreachable, changed, canceled, other)."},
			[]string{"mount", "op", "kind"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cairn_ufs_request_seconds",
			Help: "How long UFS operations took, by mount and operation.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10)},
			[]string{"mount", "op"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cairn_ufs_bytes_total",
			Help: "Bytes read from (direction=read) and written to (direction=written) a mount's UFS."}, []string{"mount", "direction"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cairn_ufs_retries_total",
			Help: "Requests to a mount's object store that were sent again after throttling, a 5xx answer or a dropped connection."}, []string{"mount"}),
	}
	reg.MustRegister(m.ops, m.errs, m.seconds, m.bytes, m.retries)
	return m
}

// observe records one operation.
func (m *Metrics) observe(mount, op string, start time.Time, err error) {
	if m == nil {
		return
	}
	m.ops.WithLabelValues(mount, op).Inc()
	m.seconds.WithLabelValues(mount, op).Observe(time.Since(start).Seconds())
	if err != nil && err != io.EOF {
		m.errs.WithLabelValues(mount, op, Kind(err)).Inc()
	}
}

func (m *Metrics) addBytes(mount, dir string, n int64) {
	if m != nil && n > 0 {
		m.bytes.WithLabelValues(mount, dir).Add(float64(n))
	}
}

// retried is what an object store's client calls before a retry.
func (m *Metrics) retried(mount string) func() {
	if m == nil {
		return nil
	}
	c := m.retries.WithLabelValues(mount)
	return c.Inc
}

// instrument wraps u so that m counts what it is asked as mount's.
func (m *Metrics) instrument(mount string, u UFS) UFS {
	return &measured{u: u, m: m, mount: mount}
}

type measured struct {
	u     UFS
	m     *Metrics
	mount string
}

func (x *measured) Open(ctx context.Context, path string) (Reader, error) {
	start := time.Now()
	r, err := x.u.Open(ctx, path)
	x.m.observe(x.mount, "open", start, err)
	if err != nil {
		return nil, err
	}
	return &measuredReader{Reader: r, x: x}, nil
}

func (x *measured) OpenVersion(ctx context.Context, path, version string) (Reader, error) {
	vo, ok := x.u.(VersionedOpener)
	if !ok {
		return x.Open(ctx, path)
	}
	start := time.Now()
	r, err := vo.OpenVersion(ctx, path, version)
	x.m.observe(x.mount, "open", start, err)
	if err != nil {
		return nil, err
	}
	return &measuredReader{Reader: r, x: x}, nil
}

func (x *measured) Create(ctx context.Context, path string) (Writer, error) {
	start := time.Now()
	w, err := x.u.Create(ctx, path)
	x.m.observe(x.mount, "create", start, err)
	if err != nil {
		return nil, err
	}
	return &measuredWriter{Writer: w, x: x}, nil
}

func (x *measured) Stat(ctx context.Context, path string) (Info, error) {
	start := time.Now()
	info, err := x.u.Stat(ctx, path)
	x.m.observe(x.mount, "stat", start, err)
	return info, err
}

func (x *measured) Walk(ctx context.Context, dir string, fn func(Info) error) error {
	start := time.Now()
	err := x.u.Walk(ctx, dir, fn)
	x.m.observe(x.mount, "walk", start, err)
	return err
}

func (x *measured) Delete(ctx context.Context, path string) error {
	start := time.Now()
	err := x.u.Delete(ctx, path)
	x.m.observe(x.mount, "delete", start, err)
	return err
}

// Probe checks the store when the UFS can (see Prober).
func (x *measured) Probe(ctx context.Context) error {
	p, ok := x.u.(Prober)
	if !ok {
		return nil
	}
	start := time.Now()
	err := p.Probe(ctx)
	x.m.observe(x.mount, "probe", start, err)
	return err
}

// AbortInterruptedUploads sweeps when the UFS can (see Sweeper).
func (x *measured) AbortInterruptedUploads(ctx context.Context, olderThan time.Duration) (int, error) {
	if s, ok := x.u.(Sweeper); ok {
		return s.AbortInterruptedUploads(ctx, olderThan)
	}
	return 0, nil
}

// Unwrap is the UFS measured.
func (x *measured) Unwrap() UFS { return x.u }

type measuredReader struct {
	Reader
	x *measured
}

func (r *measuredReader) Read(b []byte) (int, error) {
	n, err := r.Reader.Read(b)
	r.x.m.addBytes(r.x.mount, "read", int64(n))
	if err != nil && err != io.EOF {
		r.x.m.observe(r.x.mount, "read", time.Now(), err)
	}
	return n, err
}

// Seek passes to the reader when it can seek (os.File, the S3 reader).
func (r *measuredReader) Seek(offset int64, whence int) (int64, error) {
	if s, ok := r.Reader.(io.Seeker); ok {
		return s.Seek(offset, whence)
	}
	return 0, errors.ErrUnsupported
}

func (r *measuredReader) ReadAt(b []byte, off int64) (int, error) {
	start := time.Now()
	n, err := r.Reader.ReadAt(b, off)
	r.x.m.observe(r.x.mount, "read", start, err)
	r.x.m.addBytes(r.x.mount, "read", int64(n))
	return n, err
}

type measuredWriter struct {
	Writer
	x *measured
}

func (w *measuredWriter) Write(b []byte) (int, error) {
	n, err := w.Writer.Write(b)
	w.x.m.addBytes(w.x.mount, "written", int64(n))
	return n, err
}

func (w *measuredWriter) ReadFrom(r io.Reader) (int64, error) {
	n, err := w.Writer.ReadFrom(r)
	w.x.m.addBytes(w.x.mount, "written", n)
	return n, err
}

func (w *measuredWriter) Commit() (Info, error) {
	start := time.Now()
	info, err := w.Writer.Commit()
	w.x.m.observe(w.x.mount, "commit", start, err)
	return info, err
}
