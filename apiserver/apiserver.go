// Package apiserver holds what every cairn process serves beside its own
// Connect services: one HTTP listener speaking HTTP/1.1 and h2c (so gRPC,
// gRPC-Web and Connect clients all work), gRPC reflection (v1 and v1alpha)
// and health so grpcurl works unconfigured, protovalidate checks on every
// request, bounded request sizes, Prometheus metrics at /metrics and the Go
// profiler at /debug/pprof/.
package apiserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"connectrpc.com/validate"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MaxRequestBytes bounds every request message a cairn server reads.
const MaxRequestBytes = 4 << 20

// MaxHeaderBytes bounds a request's headers.
const MaxHeaderBytes = 64 << 10

// HandlerOptions are the Connect options every cairn service is built
// with: request validation (InvalidArgument naming the field) and the
// request size bound.
func HandlerOptions() []connect.HandlerOption {
	return []connect.HandlerOption{
		connect.WithInterceptors(validate.NewInterceptor()),
		connect.WithReadMaxBytes(MaxRequestBytes),
		connect.WithCompressMinBytes(1 << 10),
	}
}

// DataHandlerOptions are HandlerOptions for services that move file data:
// no gzip (file contents are often incompressible, and compressing them
// costs far more than sending them on the networks cairn runs on).
func DataHandlerOptions() []connect.HandlerOption {
	return append(HandlerOptions(), connect.WithCompression("gzip", nil, nil))
}

// Server is a process's API listener.
type Server struct {
	mux      *http.ServeMux
	names    []string
	health   *grpchealth.StaticChecker
	registry *prometheus.Registry
	srv      *http.Server
	ln       net.Listener
	tls      *tls.Config
	log      *slog.Logger
	done     chan error
}

// New creates a server whose metrics are gathered from a new registry that
// already holds the Go and process collectors.
func New(log *slog.Logger) *Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &Server{mux: http.NewServeMux(), registry: reg, log: log}
	s.mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	s.mux.HandleFunc("/debug/pprof/", pprof.Index)
	s.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return s
}

// Registry is where the process registers its metrics.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// Handle mounts a Connect service handler as a generated New...Handler
// returns it (path "/pkg.Service/", handler); the service is listed in
// reflection and health.
func (s *Server) Handle(path string, h http.Handler) {
	s.mux.Handle(path, h)
	s.names = append(s.names, strings.Trim(path, "/"))
}

// HandleFunc mounts a plain HTTP handler (not listed in reflection).
func (s *Server) HandleFunc(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Listen binds addr (host:port; port 0 picks one). It is separate from
// Serve so callers learn the bound address before serving.
func (s *Server) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	s.ln = ln
	return nil
}

// UseTLS makes Serve speak TLS (HTTP/1.1 and HTTP/2 by ALPN) with cfg.
func (s *Server) UseTLS(cfg *tls.Config) { s.tls = cfg }

// Addr is the bound address, valid after Listen.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve starts serving in the background, wrapping the mux with wrap when
// it is not nil. Reflection and
// health cover every service mounted so far.
func (s *Server) Serve(wrap func(http.Handler) http.Handler) {
	reflector := grpcreflect.NewStaticReflector(append([]string{grpchealth.HealthV1ServiceName,
		grpcreflect.ReflectV1ServiceName, grpcreflect.ReflectV1AlphaServiceName}, s.names...)...)
	s.mux.Handle(grpcreflect.NewHandlerV1(reflector))
	s.mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))
	s.health = grpchealth.NewStaticChecker(s.names...)
	s.mux.Handle(grpchealth.NewHandler(s.health))
	var h http.Handler = s.mux
	if wrap != nil {
		h = wrap(h)
	}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	if s.tls != nil {
		protocols.SetHTTP2(true)
	} else {
		protocols.SetUnencryptedHTTP2(true)
	}
	s.srv = &http.Server{
		Handler:           h,
		Protocols:         protocols,
		TLSConfig:         s.tls,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.done = make(chan error, 1)
	if s.tls != nil {
		go func() { s.done <- s.srv.ServeTLS(s.ln, "", "") }()
		return
	}
	go func() { s.done <- s.srv.Serve(s.ln) }()
}

// SetServing flips the health of every service (and of the server as a
// whole, the empty name).
func (s *Server) SetServing(ok bool) {
	st := grpchealth.StatusServing
	if !ok {
		st = grpchealth.StatusNotServing
	}
	s.health.SetStatus("", st)
	for _, n := range s.names {
		s.health.SetStatus(n, st)
	}
}

// Close stops accepting, lets running calls end for up to grace, then
// cuts the rest (streams that never end on their own).
func (s *Server) Close(grace time.Duration) error {
	if s.srv == nil {
		if s.ln != nil {
			return s.ln.Close()
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = s.srv.Close()
	}
	if serr := <-s.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}

// H2CTransport is an HTTP transport that speaks HTTP/2 without TLS, for
// gRPC streams between cairn processes.
func H2CTransport() *http.Transport {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return &http.Transport{
		Protocols:           p,
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 15 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}
}

// HTTP1Transport is a pooled HTTP/1.1 transport. Unary Connect calls cost
// less CPU over HTTP/1.1 than over HTTP/2 in Go's server (one write per
// response, no frame scheduler), and Connect server streams work over it
// too; gRPC needs H2CTransport.
func HTTP1Transport() *http.Transport {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	return &http.Transport{
		Protocols:           p,
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 15 * time.Second}).DialContext,
		MaxIdleConns:        4096,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
	}
}

// maxOneWriteBody is the largest request body OneWrite copies into memory.
const maxOneWriteBody = 1 << 20

// OneWrite wraps a transport so that a request body of known length up to
// 1 MiB goes out in one write with its headers. Go's transport flushes the
// headers on their own before a body it does not know to be in memory
// (Connect's unary payloads are such bodies), which costs a second write
// on the client, a second read on the server and a second TCP segment per
// call. Larger and streamed bodies pass through untouched.
func OneWrite(next http.RoundTripper) http.RoundTripper { return oneWrite{next} }

type oneWrite struct{ next http.RoundTripper }

func (t oneWrite) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength <= 0 || r.ContentLength > maxOneWriteBody {
		return t.next.RoundTrip(r)
	}
	buf := make([]byte, r.ContentLength)
	_, err := io.ReadFull(r.Body, buf)
	if err == nil {
		var one [1]byte
		if n, _ := r.Body.Read(one[:]); n > 0 {
			err = fmt.Errorf("the body is longer than its ContentLength %d", r.ContentLength)
		}
	}
	r.Body.Close() // a RoundTripper closes the body, whatever happens
	if err != nil {
		return nil, fmt.Errorf("read the request body of %s: %w", r.URL.Path, err)
	}
	// A shallow copy: a RoundTripper must not change the caller's request.
	r2 := *r
	r2.Body = io.NopCloser(bytes.NewReader(buf))
	r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	return t.next.RoundTrip(&r2)
}

// CloseIdleConnections closes the wrapped transport's idle connections.
func (t oneWrite) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// ConsistencyHeader is the request header with which a caller says how
// fresh a master's answer to a read must be; without it reads are
// linearizable. Its values are the Consistency* constants.
const ConsistencyHeader = "Cairn-Consistency"

// The values of ConsistencyHeader (the master documents what each
// promises).
const (
	ConsistencyLinearizable = "linearizable"
	ConsistencyStale        = "stale"
	ConsistencyStaleAny     = "stale-any"
)

// DefaultMaxStreams is how many streams (watches, tails, data streams) a
// process serves at once unless told otherwise.
const DefaultMaxStreams = 4096

// LimitStreams caps the streams the server's handlers built with the
// returned interceptor serve at once at max (DefaultMaxStreams when 0): a
// stream beyond it is refused with ResourceExhausted at once, so that one
// client opening thousands cannot starve the rest. cairn_api_open_streams
// shows how many are open.
func (s *Server) LimitStreams(max int) connect.Interceptor {
	if max <= 0 {
		max = DefaultMaxStreams
	}
	l := &streamLimit{slots: make(chan struct{}, max), max: max}
	s.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cairn_api_open_streams", Help: "Streams this process serves now (watches, tails, data streams)."},
		func() float64 { return float64(len(l.slots)) }))
	return l
}

type streamLimit struct {
	slots chan struct{}
	max   int
}

func (l *streamLimit) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc { return next }

func (l *streamLimit) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (l *streamLimit) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		select {
		case l.slots <- struct{}{}:
		default:
			return connect.NewError(connect.CodeResourceExhausted, fmt.Errorf(
				"this process serves %d streams already, its limit (--max-streams): close some, or try another process", l.max))
		}
		defer func() { <-l.slots }()
		return next(ctx, conn)
	}
}
