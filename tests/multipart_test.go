package tests

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/cespare/xxhash/v2"
	"google.golang.org/protobuf/proto"

	"github.com/cairnhq/cairn/client"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
	"github.com/cairnhq/cairn/worker"
)

// failingReader yields n bytes of data, then fails.
type failingReader struct {
	data []byte
	n    int
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("the disk under the source went away")
	}
	k := copy(p[:min(len(p), r.n)], r.data)
	r.data, r.n = r.data[k:], r.n-k
	return k, nil
}

// TestMultipartWrite: a multipart write (parts in parallel, block size
// and part size unaligned) lands on every owner of a CACHE_ONLY path and
// in the UFS for CACHE_THROUGH, byte-identical; bad flags, bad parts and a
// source that fails midway commit nothing and leave no session open.
func TestMultipartWrite(t *testing.T) {
	const block = 96 << 10
	c := startClusterWith(t, 1, 3, []string{"--cache-only-mount", "/cache-only", "--cache-only-replication", "2"},
		[]string{"--block-size", fmt.Sprint(block)})
	ctx := context.Background()
	files := c.client().Files()
	ws, cm := workerClients(t, c)
	openSessions := func() float64 {
		n := 0.0
		for _, w := range cm.GetWorkers() {
			n += metric(t, w.GetAddress(), "cairn_worker_multipart_writes_open", "")
		}
		return n
	}

	t.Run("cairn fs put --parallel to a CACHE_ONLY path", func(t *testing.T) {
		data := randomBytes(1<<20+123, 1)
		local := filepath.Join(t.TempDir(), "ckpt")
		if err := os.WriteFile(local, data, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := cairn(t, "fs", "put", "--masters", c.addrs(), "--parallel", "3", "--buffers", "4", "--part-size", "64KiB", local, "/cache-only/ckpt")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		f, err := files.Stat(ctx, "/cache-only/ckpt")
		if err != nil || f.GetChecksum() != xxhash.Sum64(data) || f.GetLength() != uint64(len(data)) {
			t.Fatalf("stat: %v, %v", f, err)
		}
		if h := holders(t, ws, "/cache-only/ckpt", f.GetVersion()); len(h) != 2 {
			t.Fatalf("held by %v, want the 2 owners of the CACHE_ONLY mount", h)
		}
		for id, w := range ws {
			r, err := w.Stat(ctx, connect.NewRequest(&cairnv1.StatRequest{Paths: []string{"/cache-only/ckpt"}}))
			if err != nil {
				t.Fatal(err)
			}
			for _, cf := range r.Msg.GetFiles() {
				if !cf.GetPinned() || cf.GetIdentity().GetChecksum() != xxhash.Sum64(data) {
					t.Fatalf("the copy on %s: pinned %v, checksum %016x", id, cf.GetPinned(), cf.GetIdentity().GetChecksum())
				}
			}
		}
		var got bytes.Buffer
		if _, err := files.Get(ctx, "/cache-only/ckpt", &got, client.GetOptions{}); err != nil || !bytes.Equal(got.Bytes(), data) {
			t.Fatalf("read back: %v (%d bytes, want %d)", err, got.Len(), len(data))
		}
	})

	t.Run("CACHE_THROUGH by parts reaches the UFS", func(t *testing.T) {
		data := randomBytes(3*block+7, 2)
		var progress []int64
		f, err := files.Put(ctx, "/through/parts", bytes.NewReader(data), int64(len(data)), client.PutOptions{
			WriteType: cairnv1.WriteType_WRITE_TYPE_CACHE_THROUGH, Parallel: 2, PartSize: 64 << 10,
			Progress: func(sent int64) { progress = append(progress, sent) }})
		if err != nil {
			t.Fatal(err)
		}
		if f.GetUfsMtime() == nil {
			t.Fatal("no UFS modification time recorded")
		}
		got, err := os.ReadFile(filepath.Join(c.masters[0].dir, "ufs", "through", "parts"))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("the UFS copy: %v (%d bytes, want %d)", err, len(got), len(data))
		}
		if len(progress) == 0 || progress[len(progress)-1] != int64(len(data)) {
			t.Fatalf("progress ended at %v, want %d", progress, len(data))
		}
	})

	t.Run("bad flags are refused with the reason", func(t *testing.T) {
		local := filepath.Join(t.TempDir(), "f")
		os.WriteFile(local, randomBytes(1000, 3), 0o644)
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--parallel", "3", "--buffers", "2"}, "buffers must be at least parallel"},
			{[]string{"--buffers", "4"}, "--buffers only matters with --parallel above 1"},
			{[]string{"--parallel", "2", "--part-size", "1KiB"}, "between 64 KiB and 1 GiB"},
		} {
			out, err := cairn(t, append(append([]string{"fs", "put", "--masters", c.addrs()}, tc.args...), local, "/bad-flags")...)
			if err == nil || !strings.Contains(out, tc.want) {
				t.Errorf("put %v: %v\n%s\nwant an error saying %q", tc.args, err, out, tc.want)
			}
		}
		if _, err := files.Stat(ctx, "/bad-flags"); connect.CodeOf(err) != connect.CodeNotFound {
			t.Fatalf("stat after refused puts: %v, want NotFound", err)
		}
	})

	t.Run("a source that fails midway commits nothing", func(t *testing.T) {
		data := randomBytes(1<<20, 4)
		_, err := files.Put(ctx, "/cache-only/half", &failingReader{data: data, n: 600 << 10}, int64(len(data)), client.PutOptions{
			Parallel: 4, PartSize: 64 << 10})
		if err == nil || !strings.Contains(err.Error(), "went away") {
			t.Fatalf("put from a failing source: %v", err)
		}
		if _, err := files.Stat(ctx, "/cache-only/half"); connect.CodeOf(err) != connect.CodeNotFound {
			t.Fatalf("stat: %v, want NotFound", err)
		}
		for id, w := range ws {
			r, err := w.Stat(ctx, connect.NewRequest(&cairnv1.StatRequest{Paths: []string{"/cache-only/half"}}))
			if err != nil || len(r.Msg.GetFiles()) != 0 {
				t.Fatalf("worker %s holds %v (%v)", id, r.Msg.GetFiles(), err)
			}
		}
		eventually(t, 10*time.Second, "no multipart session left open", func() bool { return openSessions() == 0 })
	})

	t.Run("the bulk write endpoint takes only whole rebalance copies", func(t *testing.T) {
		w := cm.GetWorkers()[1]
		data := randomBytes(300<<10, 6)
		good := &cairnv1.WriteHeader{Identity: &cairnv1.FileIdentity{Path: "/bulk/f", Version: 88, Length: uint64(len(data)), Checksum: xxhash.Sum64(data)}, RebalanceEpoch: cm.GetEpoch()}
		post := func(h *cairnv1.WriteHeader, body []byte, header string) (int, string, string) {
			if h != nil {
				raw, err := proto.Marshal(h)
				if err != nil {
					t.Fatal(err)
				}
				header = base64.StdEncoding.EncodeToString(raw)
			}
			req, err := http.NewRequest(http.MethodPost, "http://"+w.GetAddress()+worker.RawWritePath, bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set(worker.WriteHeaderHeader, header)
			resp, err := httpClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, resp.Header.Get(worker.CodeHeader), string(b)
		}
		withChecksum := func(sum uint64) *cairnv1.WriteHeader {
			h := proto.CloneOf(good)
			h.Identity.Checksum = sum
			return h
		}
		notRebalance := proto.CloneOf(good)
		notRebalance.RebalanceEpoch = 0
		for _, tc := range []struct {
			name     string
			h        *cairnv1.WriteHeader
			header   string
			body     []byte
			wantCode string
			wantText string
		}{
			{"no header", nil, "", data, "invalid_argument", "does not hold a valid"},
			{"not base64", nil, "%%%", data, "invalid_argument", "does not hold a valid"},
			{"not a rebalance copy", notRebalance, "", data, "invalid_argument", "rebalance copies only"},
			{"a short body", good, "", data[:1000], "invalid_argument", "Content-Length"},
			{"a wrong checksum", withChecksum(xxhash.Sum64(data) ^ 1), "", data, "invalid_argument", "checksum"},
		} {
			status, code, text := post(tc.h, tc.body, tc.header)
			if status == http.StatusOK || code != tc.wantCode || !strings.Contains(text, tc.wantText) {
				t.Errorf("%s: status %d, code %q, %q; want code %q saying %q", tc.name, status, code, text, tc.wantCode, tc.wantText)
			}
		}
		if h := holders(t, ws, "/bulk/f", 88); len(h) != 0 {
			t.Fatalf("refused copies are cached on %v", h)
		}
		status, code, text := post(good, data, "")
		if status != http.StatusOK {
			t.Fatalf("a good copy: status %d, code %q, %q", status, code, text)
		}
		if status, _, text := post(good, data, ""); status != http.StatusOK {
			t.Fatalf("the same copy again: status %d, %q", status, text)
		}
		if h := holders(t, ws, "/bulk/f", 88); len(h) != 1 || h[0] != w.GetId() {
			t.Fatalf("the copy is on %v, want %s", h, w.GetId())
		}
		received := metric(t, w.GetAddress(), "cairn_worker_rebalance_files_total", `direction="received"`)
		if received != 1 {
			t.Fatalf("the worker counted %v copies received, want 1 (the second was already held)", received)
		}
	})

	t.Run("bad parts are refused and a hole is never committed", func(t *testing.T) {
		w := ws[cm.GetWorkers()[0].GetId()]
		data := randomBytes(2*block, 5)
		start, err := w.StartMultipartWrite(ctx, connect.NewRequest(&cairnv1.StartMultipartWriteRequest{Header: &cairnv1.WriteHeader{
			Identity: &cairnv1.FileIdentity{Path: "/parts/direct", Version: 77, Length: uint64(len(data))}}}))
		if err != nil {
			t.Fatal(err)
		}
		id := start.Msg.GetUploadId()
		send := func(off, n int, sum uint64) error {
			st := w.WritePart(ctx)
			st.Send(&cairnv1.WritePartRequest{Part: &cairnv1.WritePartRequest_Header{Header: &cairnv1.PartHeader{UploadId: id, Offset: uint64(off), Length: uint64(n), Checksum: sum}}})
			st.Send(&cairnv1.WritePartRequest{Part: &cairnv1.WritePartRequest_Chunk{Chunk: data[off : off+n]}})
			_, err := st.CloseAndReceive()
			return err
		}
		half := len(data) / 2
		for _, tc := range []struct {
			name      string
			off, n    int
			sum       uint64
			wantCode  connect.Code
			wantInErr string
		}{
			{"a wrong checksum", 0, half, xxhash.Sum64(data[:half]) ^ 1, connect.CodeInvalidArgument, "send the part again"},
			{"the same part, right", 0, half, xxhash.Sum64(data[:half]), 0, ""},
			{"an overlapping part", half - 10, 20, xxhash.Sum64(data[half-10 : half+10]), connect.CodeInvalidArgument, "overlaps"},
		} {
			err := send(tc.off, tc.n, tc.sum)
			if connect.CodeOf(err) != tc.wantCode && !(tc.wantCode == 0 && err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantInErr)) {
				t.Fatalf("%s: %v, want code %v saying %q", tc.name, err, tc.wantCode, tc.wantInErr)
			}
		}
		_, err = w.CompleteMultipartWrite(ctx, connect.NewRequest(&cairnv1.CompleteMultipartWriteRequest{UploadId: id, Checksum: xxhash.Sum64(data)}))
		if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "no part of /parts/direct covers") {
			t.Fatalf("complete with a hole: %v", err)
		}
		if h := holders(t, ws, "/parts/direct", 77); len(h) != 0 {
			t.Fatalf("a write with a hole is cached on %v", h)
		}
		if err := send(half, half, xxhash.Sum64(data[half:])); connect.CodeOf(err) != connect.CodeNotFound {
			t.Fatalf("a part after the session ended: %v, want NotFound", err)
		}
		r, err := w.AbortMultipartWrite(ctx, connect.NewRequest(&cairnv1.AbortMultipartWriteRequest{UploadId: id}))
		if err != nil || r.Msg.GetAborted() {
			t.Fatalf("abort of an ended session: %v, %v (want no error, nothing aborted)", r, err)
		}
		if openSessions() != 0 {
			t.Fatal("a session is still open")
		}
	})
}
