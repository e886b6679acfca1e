package master

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"connectrpc.com/connect"

	"github.com/cairnhq/cairn/jobs"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

// CachePath is the seed's REST cache API, served beside the Connect API.
// POST starts a job and answers {"errors": {...}, "job": id, "created": b}
// (errors: per worker, why it got no task); DELETE with the same op stops
// the running ones and answers {"stopped": n}:
//
//   - {"op":"clear-stale"} (and "force": true): a cleanup on every worker,
//     like JobService ClearStale and StopClearStale;
//   - {"op":"free","path":"/dir"}: a FREE job of the files under /dir;
//   - ?op=free with an index file as the body (jobs.ParseIndex: one
//     absolute path per line): a FREE job of those files.
const CachePath = "/api/v1/cache"

// Limits of the cache API's request bodies: a JSON request is small; an
// index is bounded like a Connect request.
const (
	cacheJSONLimit  = 64 << 10
	cacheIndexLimit = 4 << 20
)

// cacheRequest is one call of the cache API, decoded.
type cacheRequest struct {
	Op    string   `json:"op"`
	Force bool     `json:"force"`
	Path  string   `json:"path"`
	paths []string // from an index body
}

// cacheAPIError is a refusal of the cache API with its HTTP status.
type cacheAPIError struct {
	code int
	msg  string
}

func (e *cacheAPIError) Error() string { return e.msg }

func badCacheRequest(format string, args ...any) error {
	return &cacheAPIError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// decodeCacheRequest reads r's op: from the query with an index body, or
// from a JSON body.
func decodeCacheRequest(r *http.Request) (*cacheRequest, error) {
	if op := r.URL.Query().Get("op"); op != "" {
		if op != "free" || r.Method != http.MethodPost {
			return nil, badCacheRequest(`?op= with an index body is for POST ?op=free; send other ops as JSON such as {"op":"clear-stale"}`)
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, cacheIndexLimit+1))
		if err != nil {
			return nil, badCacheRequest("read the index: %v", err)
		}
		if len(body) > cacheIndexLimit {
			return nil, &cacheAPIError{http.StatusRequestEntityTooLarge, fmt.Sprintf("the index is over %d bytes: free by folder or in parts", cacheIndexLimit)}
		}
		paths, err := jobs.ParseIndex(bytes.NewReader(body))
		if err != nil {
			return nil, badCacheRequest("the index (one absolute path per line): %v", err)
		}
		return &cacheRequest{Op: "free", paths: paths}, nil
	}
	var req cacheRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, cacheJSONLimit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, badCacheRequest(`the body must be JSON such as {"op":"clear-stale"} or {"op":"free","path":"/dir"}: %v`, err)
	}
	switch req.Op {
	case "clear-stale":
		if req.Path != "" {
			return nil, badCacheRequest(`clear-stale cleans every worker: it takes no "path"`)
		}
	case "free":
		if req.Force {
			return nil, badCacheRequest(`free takes no "force": it never drops copies that are not persisted`)
		}
		if req.Path == "" && r.Method == http.MethodPost {
			return nil, badCacheRequest(`free needs "path" (a folder; "/" frees everything persisted), or an index file posted to ?op=free`)
		}
	default:
		return nil, badCacheRequest(`unknown op %q: the cache API knows "clear-stale" and "free"`, req.Op)
	}
	return &req, nil
}

// cacheAPI serves CachePath on any master: the jobs start and stop on the
// leader like their Connect forms.
func (m *Master) cacheAPI(w http.ResponseWriter, r *http.Request) {
	reply := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(v)
	}
	fail := func(err error) {
		var ae *cacheAPIError
		if errors.As(err, &ae) {
			reply(ae.code, map[string]string{"error": ae.msg})
			return
		}
		code := http.StatusInternalServerError
		switch connect.CodeOf(err) {
		case connect.CodeInvalidArgument:
			code = http.StatusBadRequest
		case connect.CodeFailedPrecondition:
			code = http.StatusConflict
		case connect.CodeUnavailable:
			code = http.StatusServiceUnavailable
		}
		var ce *connect.Error
		msg := err.Error()
		if errors.As(err, &ce) {
			msg = ce.Message()
		}
		reply(code, map[string]string{"error": msg})
	}
	if r.Method != http.MethodPost && r.Method != http.MethodDelete {
		w.Header().Set("Allow", "POST, DELETE")
		reply(http.StatusMethodNotAllowed, map[string]string{"error": "use POST to start clear-stale or free, DELETE to stop it"})
		return
	}
	req, err := decodeCacheRequest(r)
	if err != nil {
		fail(err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	if r.Method == http.MethodDelete {
		stopped, err := m.stopCacheOp(ctx, r.Header, req.Op)
		if err != nil {
			fail(err)
			return
		}
		reply(http.StatusOK, map[string]any{"stopped": stopped})
		return
	}
	errs, job, created, err := m.startCacheOp(ctx, r.Header, req)
	if err != nil {
		fail(err)
		return
	}
	if errs == nil {
		errs = map[string]string{}
	}
	reply(http.StatusOK, map[string]any{"errors": errs, "job": job, "created": created})
}

// startCacheOp starts the job of a POST on the leader and returns the
// answer's errors, the job's id and whether it is new.
func (m *Master) startCacheOp(ctx context.Context, h http.Header, req *cacheRequest) (map[string]string, uint64, bool, error) {
	js := &jobService{m}
	if req.Op == "clear-stale" {
		resp, err := lead(ctx, m, cairnv1connect.JobServiceClearStaleProcedure, h, &cairnv1.ClearStaleRequest{Force: req.Force}, js.clearStale)
		return resp.GetErrors(), resp.GetJob().GetId(), resp.GetCreated(), err
	}
	spec := &cairnv1.JobSpec{Kind: cairnv1.JobKind_JOB_KIND_FREE, Prefix: req.Path, Paths: req.paths}
	resp, err := lead(ctx, m, cairnv1connect.JobServiceStartJobProcedure, h, &cairnv1.StartJobRequest{Spec: spec, RequestedBy: "free"}, js.startJob)
	return resp.GetErrors(), resp.GetJob().GetId(), resp.GetCreated(), err
}

// stopCacheOp stops the running jobs of op on the leader and returns how
// many it stopped.
func (m *Master) stopCacheOp(ctx context.Context, h http.Header, op string) (uint32, error) {
	js := &jobService{m}
	if op == "clear-stale" {
		resp, err := lead(ctx, m, cairnv1connect.JobServiceStopClearStaleProcedure, h, &cairnv1.StopClearStaleRequest{}, js.stopClearStale)
		return resp.GetStopped(), err
	}
	resp, err := lead(ctx, m, cairnv1connect.JobServiceStopJobProcedure, h, &cairnv1.StopJobRequest{Kind: cairnv1.JobKind_JOB_KIND_FREE, Reason: "free stopped"}, js.stopJob)
	return resp.GetStopped(), err
}
