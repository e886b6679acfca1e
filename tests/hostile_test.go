package tests

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/cairnhq/cairn/apiserver"
	"github.com/cairnhq/cairn/auth"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

// Hostile input: each case ends in a clear error, and nothing is written.
func TestHostileInput(t *testing.T) {
	t.Parallel()
	c := startClusterWith(t, 1, 1, []string{"--max-streams", "300"}, nil)
	api := c.masters[0].api
	worker := workerAddrs(t, c)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := c.masters[0].cli.Masters()[0].Namespace

	// raw posts a body to a procedure with the admin token, and returns the
	// HTTP status and the Connect error code in the answer.
	raw := func(procedure, contentType string, body []byte, header http.Header) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+api+procedure, bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return resp.StatusCode, string(b)
	}
	create := "/cairn.v1.NamespaceService/CreateFile"

	t.Run("oversized body", func(t *testing.T) {
		big := fmt.Sprintf(`{"path":"/big","write_type":"WRITE_TYPE_MUST_CACHE","replication":1,"x":"%s"}`, strings.Repeat("a", 5<<20))
		code, body := raw(create, "application/json", []byte(big), nil)
		if code < 400 || !strings.Contains(body, "resource_exhausted") && code != http.StatusRequestEntityTooLarge {
			t.Fatalf("a 5 MiB request: HTTP %d %s", code, body)
		}
	})
	t.Run("oversized header", func(t *testing.T) {
		h := http.Header{"X-Junk": {strings.Repeat("j", 100<<10)}}
		code, _ := raw(create, "application/json", []byte(`{}`), h)
		if code != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("a 100 KiB header: HTTP %d, want 431", code)
		}
	})
	t.Run("malformed protobuf and JSON", func(t *testing.T) {
		for _, tc := range []struct {
			ct   string
			body []byte
		}{
			{"application/proto", []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2}},
			{"application/proto", protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "/a\xffb")}, // invalid UTF-8
			{"application/json", []byte(`{"path": "/a", `)},
			{"application/json", []byte("{\"path\": \"/a\xff\"}")}, // invalid UTF-8
			{"application/json", []byte(`{"path": 7}`)},
		} {
			code, body := raw(create, tc.ct, tc.body, nil)
			if code != http.StatusBadRequest || !strings.Contains(body, "invalid_argument") {
				t.Errorf("%s %q: HTTP %d %s, want 400 invalid_argument", tc.ct, tc.body, code, body)
			}
		}
	})
	t.Run("hostile paths", func(t *testing.T) {
		for _, p := range []string{"/a\x00b", "/a/../etc/passwd", "/a\nb", "/a\x1bb", "/a\x7f", strings.Repeat("/s", 10000), "relative", "/a//b", ""} {
			_, err := ns.CreateFile(ctx, connect.NewRequest(&cairnv1.CreateFileRequest{Path: p, WriteType: cairnv1.WriteType_WRITE_TYPE_MUST_CACHE}))
			if connect.CodeOf(err) != connect.CodeInvalidArgument {
				t.Errorf("create %q: %v, want InvalidArgument", p, err)
			}
			_, err = ns.GetFile(ctx, connect.NewRequest(&cairnv1.GetFileRequest{Path: p}))
			if connect.CodeOf(err) != connect.CodeInvalidArgument {
				t.Errorf("get %q: %v, want InvalidArgument", p, err)
			}
		}
	})
	t.Run("page sizes", func(t *testing.T) {
		jobs := c.masters[0].cli.Masters()[0].Jobs
		if _, err := jobs.ListJobs(ctx, connect.NewRequest(&cairnv1.ListJobsRequest{PageSize: 0})); err != nil {
			t.Errorf("page size 0: %v, want the default", err)
		}
		if _, err := jobs.ListJobs(ctx, connect.NewRequest(&cairnv1.ListJobsRequest{PageSize: 1 << 31})); connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Errorf("page size 2^31: %v, want InvalidArgument", err)
		}
		if _, err := ns.ListFiles(ctx, connect.NewRequest(&cairnv1.ListFilesRequest{Prefix: "/", Limit: 0})); err != nil {
			t.Errorf("limit 0: %v, want the default", err)
		}
		if _, err := ns.ListFiles(ctx, connect.NewRequest(&cairnv1.ListFilesRequest{Prefix: "/", Limit: math.MaxUint32})); connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Errorf("limit 2^32-1: %v, want InvalidArgument", err)
		}
		if _, err := jobs.ListJobs(ctx, connect.NewRequest(&cairnv1.ListJobsRequest{PageToken: "-1"})); connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Errorf("page token -1: %v, want InvalidArgument", err)
		}
	})
	t.Run("negative offsets and lengths", func(t *testing.T) {
		for _, q := range []string{"offset=-1", "length=-5", "offset=1e99", "length=NaN"} {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+worker+"/data/v1/read?path=/x&version=1&"+q, nil)
			resp, err := httpClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("bulk read with %s: HTTP %d, want 400", q, resp.StatusCode)
			}
		}
		code, body := raw("/cairn.v1.NamespaceService/ListFiles", "application/json", []byte(`{"prefix":"/","limit":-1}`), nil)
		if code != http.StatusBadRequest || !strings.Contains(body, "invalid_argument") {
			t.Errorf("a negative limit: HTTP %d %s", code, body)
		}
	})
	t.Run("a client that never finishes its request", func(t *testing.T) {
		nc, err := net.Dial("tcp", api)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		fmt.Fprintf(nc, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n", create, api, adminToken)
		start := time.Now()
		nc.SetReadDeadline(time.Now().Add(30 * time.Second))
		b, _ := io.ReadAll(bufio.NewReader(nc)) // until the server hangs up
		if took := time.Since(start); took > 20*time.Second {
			t.Fatalf("the server kept a half-sent request open for %s", took)
		}
		t.Logf("a request whose headers never end was cut after %s (%d bytes of answer)", time.Since(start).Round(time.Second), len(b))
	})
	t.Run("thousands of streams from one client", func(t *testing.T) {
		h2 := &http.Client{Transport: auth.Transport(adminToken, apiserver.H2CTransport())}
		cc := cairnv1connect.NewClusterServiceClient(h2, "http://"+api, connect.WithGRPC())
		sctx, scancel := context.WithCancel(ctx)
		var streams []*connect.ServerStreamForClient[cairnv1.WatchClusterMapResponse]
		refused := 0
		for range 400 {
			s, err := cc.WatchClusterMap(sctx, connect.NewRequest(&cairnv1.WatchClusterMapRequest{}))
			if err != nil {
				t.Fatal(err)
			}
			if s.Receive() {
				streams = append(streams, s)
				continue
			}
			if connect.CodeOf(s.Err()) != connect.CodeResourceExhausted {
				t.Fatalf("stream %d: %v, want ResourceExhausted past the limit", len(streams)+refused, s.Err())
			}
			refused++
		}
		if len(streams) > 300 || refused < 100 {
			t.Fatalf("%d streams open and %d refused with a limit of 300", len(streams), refused)
		}
		// The master still answers everyone else, at once.
		start := time.Now()
		if _, err := c.masters[0].cli.Masters()[0].Cluster.GetClusterMap(ctx, connect.NewRequest(&cairnv1.GetClusterMapRequest{})); err != nil || time.Since(start) > 2*time.Second {
			t.Fatalf("a unary call beside 300 open streams: %v after %s", err, time.Since(start))
		}
		scancel()
		for _, s := range streams {
			s.Close()
		}
		eventually(t, 20*time.Second, "the streams to be released", func() bool {
			return metric(t, api, "cairn_api_open_streams", "") < 10
		})
	})
	t.Run("nothing was written", func(t *testing.T) {
		files, err := ns.ListFiles(ctx, connect.NewRequest(&cairnv1.ListFilesRequest{Prefix: "/"}))
		if err != nil || len(files.Msg.GetFiles()) != 0 {
			t.Fatalf("files after the hostile calls: %v %v", files, err)
		}
		tail, err := c.masters[0].cli.Masters()[0].Events.TailEvents(ctx, connect.NewRequest(&cairnv1.TailEventsRequest{FromIndex: 1, NoFollow: true}))
		if err != nil {
			t.Fatal(err)
		}
		for tail.Receive() {
			if ev := tail.Msg().GetEvent(); ev.GetFileCreated() != nil {
				t.Fatalf("a file was created: %v", ev)
			}
		}
	})
}
