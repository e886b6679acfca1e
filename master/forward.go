package master

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/cairnhq/cairn/apiserver"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

// forwardedHeader marks a request one master forwarded to another, naming
// the sender; a master that receives one and is not the leader answers
// Unavailable instead of forwarding again.
const forwardedHeader = "Cairn-Forwarded-By"

// servedLocally lists the cairn procedures any master answers from its
// own state: reads and streams. Every other cairn procedure is a write (or
// a heartbeat, whose last-seen time only the leader keeps) and runs on the
// leader, so a procedure added without a thought is forwarded, never
// wrongly answered by a follower. Anything outside masterServices (health,
// reflection, /metrics) is always served locally.
var servedLocally = map[string]bool{
	cairnv1connect.ClusterServiceGetClusterMapProcedure:      true,
	cairnv1connect.ClusterServiceWatchClusterMapProcedure:    true,
	cairnv1connect.EventServiceTailEventsProcedure:           true,
	cairnv1connect.OperatorServiceGetStatusProcedure:         true,
	cairnv1connect.OperatorServiceListRaftPeersProcedure:     true,
	cairnv1connect.OperatorServiceSaveSnapshotProcedure:      true,
	cairnv1connect.NamespaceServiceGetFileProcedure:          true,
	cairnv1connect.NamespaceServiceListFilesProcedure:        true,
	cairnv1connect.NamespaceServiceListMountsProcedure:       true,
	cairnv1connect.NamespaceServiceGetFilesProcedure:         true,
	cairnv1connect.NamespaceServiceGetUploadMappingProcedure: true,
	cairnv1connect.JobServiceGetJobProcedure:                 true,
	cairnv1connect.JobServiceListJobsProcedure:               true,
	cairnv1connect.JobServiceWatchJobProcedure:               true,
	cairnv1connect.JobServiceGetSettingsProcedure:            true,
}

// submittedAnywhere lists the procedures whose handlers build their events
// from the request alone and journal them with Master.submit: any master
// runs them, and a follower hands the events to the leader inside the
// journal (one pipelined connection) instead of forwarding the HTTP call.
// A handler that reads state to decide what to write does not belong here.
var submittedAnywhere = map[string]bool{
	cairnv1connect.EventServiceAppendNoteProcedure: true,
}

// masterServices are the services masters serve.
var masterServices = []string{
	cairnv1connect.ClusterServiceName,
	cairnv1connect.OperatorServiceName,
	cairnv1connect.EventServiceName,
	cairnv1connect.NamespaceServiceName,
	cairnv1connect.JobServiceName,
	cairnv1connect.LeaseServiceName,
}

// leaderOnly reports whether a request path must run on the leader.
func leaderOnly(path string) bool {
	if servedLocally[path] || submittedAnywhere[path] {
		return false
	}
	if path == CachePath {
		return true
	}
	for _, svc := range masterServices {
		if strings.HasPrefix(path, "/"+svc+"/") {
			return true
		}
	}
	return false
}

// route serves leader-only calls on the leader: a follower forwards the
// whole HTTP request (any of the three protocols) to the leader's API
// address. While no leader is known (an election), it holds the call for
// up to ForwardHold, like Nomad's RPC hold, then answers Unavailable.
func (m *Master) route(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !leaderOnly(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		if m.j.IsLeader() {
			next.ServeHTTP(w, r)
			return
		}
		// Leader-only calls are unary (every stream is served locally), so
		// their bodies are small and can be sent again if the first leader
		// we try has just died.
		body, err := io.ReadAll(io.LimitReader(r.Body, apiserver.MaxRequestBytes+64<<10))
		if err != nil {
			m.errw.Write(w, r, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("read request: %w", err)))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), m.cfg.ForwardHold)
		defer cancel()
		var last error
		for {
			if m.j.IsLeader() {
				r.Body = io.NopCloser(bytes.NewReader(body))
				next.ServeHTTP(w, r)
				m.metrics.forwarded.WithLabelValues(r.URL.Path, "served_after_hold").Inc()
				return
			}
			if by := r.Header.Get(forwardedHeader); by != "" {
				m.metrics.forwarded.WithLabelValues(r.URL.Path, "refused").Inc()
				m.errw.Write(w, r, connect.NewError(connect.CodeUnavailable,
					fmt.Errorf("master %s forwarded this call to %s, which is not the leader (leadership is moving); retry", by, m.cfg.ID)))
				return
			}
			changed := m.j.LeaderChanged()
			if addr := m.leaderAPI(); addr != "" {
				err := m.forward(ctx, w, r, addr, body)
				if err == nil {
					m.metrics.forwarded.WithLabelValues(r.URL.Path, "forwarded").Inc()
					return
				}
				last = err
			}
			select {
			case <-changed:
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				m.metrics.forwarded.WithLabelValues(r.URL.Path, "no_leader").Inc()
				msg := fmt.Sprintf("no raft leader reachable within %s", m.cfg.ForwardHold)
				if last != nil {
					msg += fmt.Sprintf(" (last try: %v)", last)
				}
				m.errw.Write(w, r, connect.NewError(connect.CodeUnavailable,
					errors.New(msg+"; a majority of the masters must be up to elect one")))
				return
			case <-m.stop:
				m.errw.Write(w, r, connect.NewError(connect.CodeUnavailable, errors.New("master is shutting down")))
				return
			}
		}
	})
}

// leaderAPI is the API address of the leader, or "" when no leader is
// known, it is this master, or it has not advertised an address.
func (m *Master) leaderAPI() string {
	id, _ := m.j.Leader()
	if id == "" || id == m.cfg.ID {
		return ""
	}
	adv, ok, err := m.j.State().Master(id)
	if err != nil || !ok {
		return ""
	}
	return adv.GetApiAddress()
}

// forward sends the request to the leader at addr and copies its answer.
// It returns an error, having written nothing, when the leader could not
// be reached, so the caller may try again.
func (m *Master) forward(ctx context.Context, w http.ResponseWriter, r *http.Request, addr string, body []byte) error {
	out, err := http.NewRequestWithContext(ctx, r.Method, "http://"+addr+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	out.Header = r.Header.Clone()
	out.Header.Del("Connection")
	out.Header.Set(forwardedHeader, m.cfg.ID)
	out.ContentLength = int64(len(body))
	hc := m.fwd1
	if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/grpc") && !strings.HasPrefix(ct, "application/grpc-web") {
		hc = m.fwd
	}
	resp, err := hc.Do(out)
	if err != nil {
		return fmt.Errorf("forward to the leader at %s: %w", addr, err)
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, resp.Body); err != nil {
		m.log.Warn("copy the leader's answer", "procedure", r.URL.Path, "err", err)
		return nil
	}
	for k, vs := range resp.Trailer {
		w.Header()[http.TrailerPrefix+k] = vs
	}
	return nil
}
