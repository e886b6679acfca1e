package master

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

// CachePath is the seed's REST cache API, served beside the Connect API:
// POST with {"op":"clear-stale"} starts a cleanup on every worker and
// answers {"errors": {...}}; DELETE with the same body stops it.
const CachePath = "/api/v1/cache"

// cacheAPI serves CachePath on any master: clear-stale runs on the leader
// like its Connect form (JobService ClearStale and StopClearStale).
func (m *Master) cacheAPI(w http.ResponseWriter, r *http.Request) {
	reply := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(v)
	}
	fail := func(err error) {
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
		reply(http.StatusMethodNotAllowed, map[string]string{"error": "use POST to start clear-stale, DELETE to stop it"})
		return
	}
	var body struct {
		Op    string `json:"op"`
		Force bool   `json:"force"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		reply(http.StatusBadRequest, map[string]string{"error": fmt.Sprintf(`the body must be JSON such as {"op":"clear-stale"}: %v`, err)})
		return
	}
	if body.Op != "clear-stale" {
		reply(http.StatusBadRequest, map[string]string{"error": fmt.Sprintf(`unknown op %q: the cache API knows "clear-stale"`, body.Op)})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	js := &jobService{m}
	if r.Method == http.MethodDelete {
		resp, err := lead(ctx, m, cairnv1connect.JobServiceStopClearStaleProcedure, r.Header, &cairnv1.StopClearStaleRequest{}, js.stopClearStale)
		if err != nil {
			fail(err)
			return
		}
		reply(http.StatusOK, map[string]any{"stopped": resp.GetStopped()})
		return
	}
	resp, err := lead(ctx, m, cairnv1connect.JobServiceClearStaleProcedure, r.Header, &cairnv1.ClearStaleRequest{Force: body.Force}, js.clearStale)
	if err != nil {
		fail(err)
		return
	}
	errs := resp.GetErrors()
	if errs == nil {
		errs = map[string]string{}
	}
	reply(http.StatusOK, map[string]any{"errors": errs, "job": resp.GetJob().GetId(), "created": resp.GetCreated()})
}
