package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/cairnhq/cairn/client"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// cacheREST calls the REST cache API on addr with token and returns the
// HTTP status and the decoded JSON answer.
func cacheREST(t *testing.T, method, addr, query, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+"/api/v1/cache"+query, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s /api/v1/cache%s: %v", method, query, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s /api/v1/cache%s: HTTP %d, not JSON: %q", method, query, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

// TestFree: free by an index file (the CLI's --index) drops the cached
// copies of exactly the listed persisted files; over REST, beside
// clear-stale, free by folder and by index file answer like clear-stale
// ({"errors": {}, "job": N, "created": true}) and drop exactly theirs,
// never a copy of a file that is not persisted; an operator token may, a
// writer token may not (as for the Connect StartJob); bad requests are
// 400 with the reason; freed files still read right, from the UFS.
func TestFree(t *testing.T) {
	t.Parallel()
	c := startClusterWith(t, 1, 2, []string{"--cleanup-settle", "1h"}, nil)
	files := c.client().Files()
	sums, versions := map[string]uint64{}, map[string]uint64{}
	var paths []string
	put := func(p string, wt cairnv1.WriteType) {
		t.Helper()
		data := randomBytes(1000+len(paths), uint64(len(paths)))
		f, err := files.Put(context.Background(), p, bytes.NewReader(data), int64(len(data)), client.PutOptions{WriteType: wt})
		if err != nil {
			t.Fatalf("put %s: %v", p, err)
		}
		sums[p], versions[p] = xxhash.Sum64(data), f.GetVersion()
		paths = append(paths, p)
	}
	for i := range 6 {
		put(fmt.Sprintf("/idx/f%d", i), cairnv1.WriteType_WRITE_TYPE_CACHE_THROUGH)
	}
	for i := range 4 {
		put(fmt.Sprintf("/dir/f%d", i), cairnv1.WriteType_WRITE_TYPE_CACHE_THROUGH)
		put(fmt.Sprintf("/dirx/f%d", i), cairnv1.WriteType_WRITE_TYPE_CACHE_THROUGH) // not under /dir
	}
	put("/dir/unpersisted", cairnv1.WriteType_WRITE_TYPE_MUST_CACHE)
	cm := mapWith(t, c, 2)
	// copies counts the cached copies of each path, over both workers.
	copies := func() map[string]int {
		n := map[string]int{}
		for _, set := range cachedOn(t, cm, paths, versions) {
			for p := range set {
				n[p]++
			}
		}
		return n
	}
	before := copies()
	for _, p := range paths {
		if before[p] == 0 {
			t.Fatalf("%s is cached nowhere before any free", p)
		}
	}
	// expect checks that exactly the paths in gone lost their copies since
	// the last check, and that the job counted them.
	expect := func(what string, job uint64, gone ...string) {
		t.Helper()
		done := waitJobState(t, c, job, cairnv1.JobState_JOB_STATE_SUCCEEDED, time.Minute)
		now := copies()
		var lost []string
		dropped := 0
		for _, p := range paths {
			if now[p] < before[p] {
				lost = append(lost, p)
				dropped += before[p] - now[p]
			}
		}
		slices.Sort(gone)
		if !slices.Equal(lost, gone) {
			t.Fatalf("%s: the copies of %v were dropped, want those of %v", what, lost, gone)
		}
		for _, p := range gone {
			if now[p] != 0 {
				t.Fatalf("%s: %s still has %d copies", what, p, now[p])
			}
		}
		if cn := done.GetJob().GetCounters(); cn.GetFreed() != uint64(dropped) {
			t.Fatalf("%s: job %d counted %d freed, the workers dropped %d copies", what, job, cn.GetFreed(), dropped)
		}
		before = now
	}
	lastFree := func() uint64 {
		resp, err := listJobs(t, c, &cairnv1.ListJobsRequest{Kind: cairnv1.JobKind_JOB_KIND_FREE, PageSize: 1})
		if err != nil || len(resp.GetJobs()) != 1 {
			t.Fatalf("the newest free job: %v %v", resp, err)
		}
		return resp.GetJobs()[0].GetId()
	}

	t.Run("by index file with the CLI", func(t *testing.T) {
		index := filepath.Join(t.TempDir(), "paths.txt")
		if err := os.WriteFile(index, []byte("# the old shards\n/idx/f0\n\n/idx/f2\n  /idx/f4\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := cairn(t, "job", "start", "free", "--index", index, "--wait", "--masters", c.addrs()); err != nil {
			t.Fatalf("free --index: %v\n%s", err, out)
		}
		expect("free --index", lastFree(), "/idx/f0", "/idx/f2", "/idx/f4")
	})

	api := c.masters[0].api
	operator := makeToken(t, c, "ops", cairnv1.Role_ROLE_OPERATOR)
	started := func(what string, code int, body map[string]any) uint64 {
		t.Helper()
		errs, ok := body["errors"].(map[string]any)
		id, _ := body["job"].(float64)
		if code != http.StatusOK || !ok || len(errs) != 0 || body["created"] != true || id == 0 {
			t.Fatalf("%s: HTTP %d %v, want 200 with empty errors, a new job and its id", what, code, body)
		}
		return uint64(id)
	}

	t.Run("by folder over REST", func(t *testing.T) {
		code, body := cacheREST(t, http.MethodPost, api, "", operator, `{"op":"free","path":"/dir"}`)
		id := started("free /dir", code, body)
		expect("REST free /dir", id, "/dir/f0", "/dir/f1", "/dir/f2", "/dir/f3")
		if by := getJob(t, c, id).GetJob().GetRequestedBy(); by != "ops" {
			t.Fatalf("the REST free was requested by %q, want the token's name ops", by)
		}
	})

	t.Run("by index file over REST", func(t *testing.T) {
		code, body := cacheREST(t, http.MethodPost, api, "?op=free", operator, "/idx/f1\r\n# and\n/idx/f3\n")
		expect("REST free by index", started("free by index", code, body), "/idx/f1", "/idx/f3")
	})

	t.Run("refusals", func(t *testing.T) {
		writer := makeToken(t, c, "writer", cairnv1.Role_ROLE_WRITER)
		for _, r := range []struct {
			name, method, query, token, body string
			code                             int
			want                             string
		}{
			{"a writer may not free", http.MethodPost, "", writer, `{"op":"free","path":"/"}`, http.StatusForbidden, "operator"},
			{"a writer may not free by index", http.MethodPost, "?op=free", writer, "/idx/f5\n", http.StatusForbidden, "operator"},
			{"free needs a path", http.MethodPost, "", operator, `{"op":"free"}`, http.StatusBadRequest, `free needs "path"`},
			{"a relative path in the index", http.MethodPost, "?op=free", operator, "/idx/f5\nidx/f5\n", http.StatusBadRequest, `line 2: "idx/f5" is not an absolute path`},
			{"an index of nothing", http.MethodPost, "?op=free", operator, "# nothing\n", http.StatusBadRequest, "lists no paths"},
			{"a path that climbs out", http.MethodPost, "", operator, `{"op":"free","path":"/../x"}`, http.StatusBadRequest, "path"},
			{"an unknown op", http.MethodPost, "", operator, `{"op":"evict"}`, http.StatusBadRequest, `"clear-stale" and "free"`},
		} {
			code, body := cacheREST(t, r.method, api, r.query, r.token, r.body)
			if code != r.code || !strings.Contains(fmt.Sprint(body["error"]), r.want) {
				t.Errorf("%s: HTTP %d %v, want %d and an error containing %q", r.name, code, body, r.code, r.want)
			}
		}
		if now := copies(); now["/idx/f5"] != before["/idx/f5"] {
			t.Fatal("a refused free dropped /idx/f5")
		}
		code, body := cacheREST(t, http.MethodDelete, api, "", operator, `{"op":"free"}`) // none runs: still fine
		if code != http.StatusOK || body["stopped"] != float64(0) {
			t.Fatalf("DELETE free with none running: HTTP %d %v", code, body)
		}
	})

	for _, p := range paths { // freed or not, every file reads right
		var buf bytes.Buffer
		if _, err := files.Get(context.Background(), p, &buf, client.GetOptions{NoShortCircuit: true}); err != nil || xxhash.Sum64(buf.Bytes()) != sums[p] {
			t.Fatalf("read %s after the frees: %v", p, err)
		}
	}
}
