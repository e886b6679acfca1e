package persistence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/cespare/xxhash/v2"

	"github.com/cairnhq/cairn/persistence/s3test"
)

// These tests talk to a real S3 server (versitygw, a process of its own),
// so they set the AWS environment variables and are not parallel.

func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// openS3 opens uri on srv with options.
func openS3(t *testing.T, endpoint, uri string, opts map[string]string, cfg S3Config) *S3 {
	t.Helper()
	o := map[string]string{"endpoint": endpoint, "path_style": "true"}
	for k, v := range opts {
		o[k] = v
	}
	spec, err := ParseURI(uri, o)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Label == "" {
		cfg.Label = "/s3 (" + spec.URI() + ")"
	}
	s, err := NewS3(context.Background(), spec, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readAll(t *testing.T, u UFS, p string) ([]byte, Info) {
	t.Helper()
	r, err := u.Open(context.Background(), p)
	if err != nil {
		t.Fatalf("open %s: %v", p, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return b, r.Info()
}

func TestS3(t *testing.T) {
	srv := s3test.Start(t)
	srv.Setenv(t)
	srv.Bucket(t, "bkt")
	ctx := context.Background()
	s := openS3(t, srv.Endpoint, "s3://bkt/pre/fix", map[string]string{"part_size_mib": "5", "parallel_parts": "2"}, S3Config{})
	if err := s.Probe(ctx); err != nil {
		t.Fatalf("probe: %v", err)
	}

	t.Run("a small file is one PUT, under the prefix", func(t *testing.T) {
		data := randBytes(100_000, 1)
		w, err := s.Create(ctx, "/a/small.bin")
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(data); i += 7777 {
			w.Write(data[i:min(i+7777, len(data))])
		}
		if n, sum, err := w.Written(); n != int64(len(data)) || sum != xxhash.Sum64(data) || err != nil {
			t.Fatalf("Written = %d %x %v", n, sum, err)
		}
		if _, err := s.Stat(ctx, "/a/small.bin"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("visible before Commit: %v", err)
		}
		info, err := w.Commit()
		if err != nil {
			t.Fatal(err)
		}
		if info.Size != int64(len(data)) || info.ETag == "" || info.ModTime.IsZero() || info.Path != "/a/small.bin" {
			t.Fatalf("commit info %+v", info)
		}
		if b, err := os.ReadFile(filepath.Join(srv.Dir, "bkt/pre/fix/a/small.bin")); err != nil || !bytes.Equal(b, data) {
			t.Fatalf("the object in the bucket: %v", err)
		}
		got, ri := readAll(t, s, "/a/small.bin")
		if !bytes.Equal(got, data) || ri.ETag != info.ETag || !ri.ModTime.Equal(info.ModTime) {
			t.Fatalf("read back %d bytes, info %+v, want %+v", len(got), ri, info)
		}
		st, err := s.Stat(ctx, "/a")
		if err != nil || !st.IsDir {
			t.Fatalf("stat of a folder: %+v %v", st, err)
		}
	})

	t.Run("a large file is a multipart upload in parallel parts with bounded memory", func(t *testing.T) {
		data := randBytes(23<<20+123, 2)
		w, err := s.Create(ctx, "/big.bin")
		if err != nil {
			t.Fatal(err)
		}
		if n, err := w.ReadFrom(io.MultiReader(bytes.NewReader(data[:3<<20]), bytes.NewReader(data[3<<20:]))); err != nil || n != int64(len(data)) {
			t.Fatalf("ReadFrom = %d, %v", n, err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if made := w.(*s3Writer).made; made > 3 {
			t.Fatalf("%d part buffers for 2 parallel parts, want at most 3", made)
		}
		if _, err := s.Stat(ctx, "/big.bin"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("visible before Commit: %v", err)
		}
		info, err := w.Commit()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(info.ETag, "-5") || info.Size != int64(len(data)) {
			t.Fatalf("a 5-part upload: %+v", info)
		}
		got, _ := readAll(t, s, "/big.bin")
		if !bytes.Equal(got, data) {
			t.Fatal("read back other bytes")
		}
		r, err := s.Open(ctx, "/big.bin")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		buf := make([]byte, 1<<20)
		// A stream from anywhere: Seek, then Read.
		if _, err := r.(io.Seeker).Seek(5<<20-10, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		if n, err := io.ReadFull(r, buf); err != nil || !bytes.Equal(buf[:n], data[5<<20-10:6<<20-10]) {
			t.Fatalf("read after Seek: %d, %v", n, err)
		}
		for _, off := range []int64{0, 5<<20 - 10, int64(len(data)) - 1000} {
			n, err := r.ReadAt(buf, off)
			want := min(int64(len(buf)), int64(len(data))-off)
			if int64(n) != want || !bytes.Equal(buf[:n], data[off:off+want]) || (want < int64(len(buf)) && err != io.EOF) {
				t.Fatalf("ReadAt(%d) = %d, %v", off, n, err)
			}
		}
	})

	t.Run("an aborted write leaves no object and no upload", func(t *testing.T) {
		w, _ := s.Create(ctx, "/aborted.bin")
		w.Write(randBytes(12<<20, 3))
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := w.Abort(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Stat(ctx, "/aborted.bin"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("an aborted write is visible: %v", err)
		}
		ups, err := s.c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("bkt")})
		if err != nil || len(ups.Uploads) != 0 {
			t.Fatalf("uploads left: %v %v", ups, err)
		}
	})

	t.Run("interrupted uploads are aborted", func(t *testing.T) {
		w, _ := s.Create(ctx, "/interrupted.bin")
		w.Write(randBytes(6<<20, 4))
		w.Flush() // parts sent; the writer "dies" here
		if n, err := s.AbortInterruptedUploads(ctx, time.Hour); err != nil || n != 0 {
			t.Fatalf("a fresh upload was aborted: %d %v", n, err)
		}
		if n, err := s.AbortInterruptedUploads(ctx, -time.Minute); err != nil || n != 1 {
			t.Fatalf("AbortInterruptedUploads = %d, %v; want 1", n, err)
		}
	})

	t.Run("an object another program put in the bucket", func(t *testing.T) {
		data := []byte("written by hand")
		os.MkdirAll(filepath.Join(srv.Dir, "bkt/pre/fix/by"), 0o755)
		if err := os.WriteFile(filepath.Join(srv.Dir, "bkt/pre/fix/by/hand.txt"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if got, info := readAll(t, s, "/by/hand.txt"); !bytes.Equal(got, data) || info.Size != int64(len(data)) {
			t.Fatalf("read %q %+v", got, info)
		}
	})

	t.Run("walk pages through the listing and skips what is no path", func(t *testing.T) {
		for i := range 5 {
			w, _ := s.Create(ctx, fmt.Sprintf("/walk/f%d", i))
			w.Write([]byte{byte(i)})
			if _, err := w.Commit(); err != nil {
				t.Fatal(err)
			}
		}
		s.listPage = 2
		defer func() { s.listPage = 0 }()
		var got []string
		if err := s.Walk(ctx, "/walk", func(i Info) error { got = append(got, i.Path); return nil }); err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, ",") != "/walk/f0,/walk/f1,/walk/f2,/walk/f3,/walk/f4" {
			t.Fatalf("walk: %v", got)
		}
		if err := s.Walk(ctx, "/nothing-here", func(Info) error { return nil }); !errors.Is(err, ErrNotFound) {
			t.Fatalf("walk of a missing folder: %v", err)
		}
	})

	t.Run("delete", func(t *testing.T) {
		if err := s.Delete(ctx, "/walk/f0"); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "/walk/f0"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("delete of a missing object: %v", err)
		}
	})

	t.Run("an object replaced while it is read", func(t *testing.T) {
		put := func(data []byte) {
			w, _ := s.Create(ctx, "/changing")
			w.Write(data)
			if _, err := w.Commit(); err != nil {
				t.Fatal(err)
			}
		}
		put([]byte("first version"))
		r, err := s.Open(ctx, "/changing")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		put([]byte("second version, longer"))
		if _, err := r.ReadAt(make([]byte, 4), 0); !errors.Is(err, ErrChanged) {
			t.Fatalf("read of a replaced object: %v", err)
		}
	})

	t.Run("paths that are not clean never reach the store", func(t *testing.T) {
		for _, p := range []string{"/../escape", "relative", "/a//b"} {
			if _, err := s.Create(ctx, p); !errors.Is(err, ErrInvalidPath) {
				t.Errorf("Create(%q): %v", p, err)
			}
		}
	})
}

func TestS3Errors(t *testing.T) {
	srv := s3test.Start(t)
	srv.Setenv(t)
	srv.Bucket(t, "bkt")
	ctx := context.Background()

	t.Run("a bucket that does not exist", func(t *testing.T) {
		s := openS3(t, srv.Endpoint, "s3://nobucket/x", nil, S3Config{})
		err := s.Probe(ctx)
		if !errors.Is(err, ErrNoBucket) || !strings.Contains(err.Error(), "s3://nobucket/x") {
			t.Fatalf("probe of a missing bucket: %v", err)
		}
	})
	t.Run("wrong credentials", func(t *testing.T) {
		t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
		s := openS3(t, srv.Endpoint, "s3://bkt", nil, S3Config{})
		if err := s.Probe(ctx); !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "/s3 (s3://bkt)") {
			t.Fatalf("probe with a wrong secret: %v", err)
		}
		if _, err := s.Open(ctx, "/x"); !errors.Is(err, ErrDenied) {
			t.Fatalf("open with a wrong secret: %v", err)
		}
	})
	t.Run("no credentials at all", func(t *testing.T) {
		t.Setenv("AWS_ACCESS_KEY_ID", "")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "")
		s := openS3(t, srv.Endpoint, "s3://bkt", nil, S3Config{MaxAttempts: 1})
		start := time.Now()
		if err := s.Probe(ctx); !errors.Is(err, ErrDenied) {
			t.Fatalf("probe without credentials: %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("a process without credentials waited %s", d)
		}
	})
	t.Run("throttled requests are retried with backoff", func(t *testing.T) {
		target, _ := url.Parse(srv.Endpoint)
		proxy := httputil.NewSingleHostReverseProxy(target)
		var throttle atomic.Int64
		front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if throttle.Add(-1) >= 0 {
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)
				return
			}
			proxy.ServeHTTP(w, r)
		}))
		defer front.Close()
		var retries atomic.Int64
		s := openS3(t, front.URL, "s3://bkt", nil, S3Config{OnRetry: func() { retries.Add(1) }, MaxAttempts: 4})
		throttle.Store(2)
		w, _ := s.Create(ctx, "/throttled")
		w.Write([]byte("x"))
		if _, err := w.Commit(); err != nil {
			t.Fatalf("a PUT throttled twice: %v", err)
		}
		if retries.Load() < 2 {
			t.Fatalf("%d retries", retries.Load())
		}
		throttle.Store(1000)
		_, err := s.Stat(ctx, "/throttled")
		if !errors.Is(err, ErrThrottled) || !strings.Contains(err.Error(), "/s3 (s3://bkt)") {
			t.Fatalf("a store that keeps throttling: %v", err)
		}
	})
	t.Run("a store that does not answer", func(t *testing.T) {
		s := openS3(t, srv.Endpoint, "s3://bkt", nil, S3Config{MaxAttempts: 2})
		srv.Stop()
		if err := s.Probe(ctx); !errors.Is(err, ErrUnreachable) {
			t.Fatalf("probe of a stopped store: %v", err)
		}
	})
}

func TestS3Versions(t *testing.T) {
	srv := s3test.StartWith(t, s3test.Options{Versioning: true})
	srv.Setenv(t)
	srv.Bucket(t, "vbkt")
	ctx := context.Background()
	s := openS3(t, srv.Endpoint, "s3://vbkt", nil, S3Config{})
	if _, err := s.c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("vbkt"),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatalf("turn versioning on: %v", err)
	}
	put := func(data string) Info {
		w, _ := s.Create(ctx, "/v")
		w.Write([]byte(data))
		info, err := w.Commit()
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	v1 := put("version one")
	v2 := put("version two!")
	if v1.VersionID == "" || v1.VersionID == v2.VersionID {
		t.Fatalf("version ids %q, %q", v1.VersionID, v2.VersionID)
	}
	r, err := s.OpenVersion(ctx, "/v", v1.VersionID)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if b, _ := io.ReadAll(r); string(b) != "version one" || r.Info().VersionID != v1.VersionID {
		t.Fatalf("version one reads %q", b)
	}
}
