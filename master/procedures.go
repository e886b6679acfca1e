package master

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/cairnhq/cairn/auth"
	"github.com/cairnhq/cairn/journal"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

// reads lists the procedures any master answers from its own state after
// the read barrier (consistency.go): linearizable unless the caller asks
// for a stale read. Every other procedure of the master's services is in
// leaderProcs (it runs on the leader) or in localOps; a test walks every
// procedure of every service so that none is left out.
var reads = map[string]bool{
	cairnv1connect.ClusterServiceGetClusterMapProcedure:      true,
	cairnv1connect.ClusterServiceWatchClusterMapProcedure:    true,
	cairnv1connect.EventServiceTailEventsProcedure:           true,
	cairnv1connect.OperatorServiceGetStatusProcedure:         true,
	cairnv1connect.OperatorServiceListRaftPeersProcedure:     true,
	cairnv1connect.NamespaceServiceGetFileProcedure:          true,
	cairnv1connect.NamespaceServiceListFilesProcedure:        true,
	cairnv1connect.NamespaceServiceListMountsProcedure:       true,
	cairnv1connect.NamespaceServiceGetFilesProcedure:         true,
	cairnv1connect.NamespaceServiceGetUploadMappingProcedure: true,
	cairnv1connect.JobServiceGetJobProcedure:                 true,
	cairnv1connect.JobServiceListJobsProcedure:               true,
	cairnv1connect.JobServiceWatchJobProcedure:               true,
	cairnv1connect.JobServiceGetSettingsProcedure:            true,
	cairnv1connect.AuthServiceListTokensProcedure:            true,
	cairnv1connect.AuthServiceWatchTokensProcedure:           true,
}

// localOps lists the procedures the master that receives them serves
// itself and that read no replicated state: SaveSnapshot streams this
// master's own snapshot, WhoAmI names the caller's own token.
var localOps = map[string]bool{
	cairnv1connect.OperatorServiceSaveSnapshotProcedure: true,
	cairnv1connect.AuthServiceWhoAmIProcedure:           true,
}

// masterServices are the services masters serve.
var masterServices = []string{
	cairnv1connect.ClusterServiceName,
	cairnv1connect.OperatorServiceName,
	cairnv1connect.EventServiceName,
	cairnv1connect.NamespaceServiceName,
	cairnv1connect.JobServiceName,
	cairnv1connect.LeaseServiceName,
	cairnv1connect.AuthServiceName,
}

// leaderProc runs one leader-only procedure from its encoded request and
// returns its encoded response.
type leaderProc func(ctx context.Context, body []byte) ([]byte, error)

// leaderProcs are the procedures that run on the leader: writes, and calls
// that need what only the leader holds (its liveness clock, its lease
// claims). A follower sends them to the leader inside the journal
// (journal.Lead); the leader runs the same function as for a call it
// received itself.
func (m *Master) leaderProcs() map[string]leaderProc {
	cs, ops, es := &clusterService{m}, &operatorService{m}, &eventService{m}
	ns, js, ls, as := &namespaceService{m}, &jobService{m}, m.leases, &authService{m}
	return map[string]leaderProc{
		cairnv1connect.ClusterServiceRegisterWorkerProcedure:      proc(cs.registerWorker),
		cairnv1connect.ClusterServiceHeartbeatProcedure:           proc(cs.heartbeat),
		cairnv1connect.ClusterServiceSetReplicationProcedure:      proc(cs.setReplication),
		cairnv1connect.ClusterServiceMaintainWorkerProcedure:      proc(cs.maintainWorker),
		cairnv1connect.ClusterServiceActivateWorkerProcedure:      proc(cs.activateWorker),
		cairnv1connect.ClusterServiceDecommissionWorkerProcedure:  proc(cs.decommissionWorker),
		cairnv1connect.OperatorServiceTransferLeadershipProcedure: proc(ops.transferLeadership),
		cairnv1connect.OperatorServiceJoinClusterProcedure:        proc(ops.joinCluster),
		cairnv1connect.OperatorServiceRemovePeerProcedure:         proc(ops.removePeer),
		cairnv1connect.EventServiceAppendNoteProcedure:            proc(es.appendNote),
		cairnv1connect.NamespaceServiceCreateFileProcedure:        proc(ns.createFile),
		cairnv1connect.NamespaceServiceCompleteFileProcedure:      proc(ns.completeFile),
		cairnv1connect.NamespaceServiceDeleteFileProcedure:        proc(ns.deleteFile),
		cairnv1connect.NamespaceServiceLoadFileProcedure:          proc(ns.loadFile),
		cairnv1connect.NamespaceServicePersistFileProcedure:       proc(ns.persistFile),
		cairnv1connect.NamespaceServiceSetUploadMappingProcedure:  proc(ns.setUploadMapping),
		cairnv1connect.NamespaceServiceAddMountProcedure:          proc(ns.addMount),
		cairnv1connect.NamespaceServiceRemoveMountProcedure:       proc(ns.removeMount),
		cairnv1connect.JobServiceStartJobProcedure:                proc(js.startJob),
		cairnv1connect.JobServiceStopJobProcedure:                 proc(js.stopJob),
		cairnv1connect.JobServiceClearStaleProcedure:              proc(js.clearStale),
		cairnv1connect.JobServiceStopClearStaleProcedure:          proc(js.stopClearStale),
		cairnv1connect.JobServiceUpdateSettingProcedure:           proc(js.updateSetting),
		cairnv1connect.LeaseServiceLeaseProcedure:                 proc(ls.lease),
		cairnv1connect.LeaseServiceRenewProcedure:                 proc(ls.renew),
		cairnv1connect.LeaseServiceReportProcedure:                proc(ls.report),
		cairnv1connect.LeaseServiceReportBatchProcedure:           proc(ls.reportBatch),
		cairnv1connect.AuthServiceCreateTokenProcedure:            proc(as.createToken),
		cairnv1connect.AuthServiceRevokeTokenProcedure:            proc(as.revokeToken),
	}
}

// proc adapts a typed leader function to a leaderProc.
func proc[Req, Resp any](fn func(context.Context, *Req) (*Resp, error)) leaderProc {
	return func(ctx context.Context, body []byte) ([]byte, error) {
		req := new(Req)
		if err := proto.Unmarshal(body, any(req).(proto.Message)); err != nil {
			return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("decode the forwarded request: %w", err))
		}
		resp, err := fn(ctx, req)
		if err != nil {
			return nil, err
		}
		return proto.Marshal(any(resp).(proto.Message))
	}
}

// handleCall runs a call a follower forwarded (journal.CallHandler).
func (m *Master) handleCall(ctx context.Context, c journal.Call) ([]byte, error) {
	p, ok := m.procs[c.Method]
	if !ok {
		return nil, callError(connect.NewError(connect.CodeUnimplemented,
			fmt.Errorf("the leader does not run %s: are all masters on the same release?", c.Method)))
	}
	// The follower that sent the call checked its token; the name goes into
	// the events the call writes.
	ctx = auth.WithPrincipal(withRequestIDValue(ctx, c.RequestID), auth.Principal{Name: c.Caller})
	body, err := p(ctx, c.Body)
	return body, callError(err)
}

// callError is how the leader sends a handler's error back to the
// follower: its Connect code and message.
func callError(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	var ce *connect.Error
	if errors.As(err, &ce) {
		msg = ce.Message()
	}
	return &journal.CallError{Code: uint32(connect.CodeOf(err)), Message: msg}
}

// onLeader serves a leader-only Connect call: fn runs on the leader, here
// or, through the journal, there (see lead).
func onLeader[Req, Resp any](ctx context.Context, m *Master, req *connect.Request[Req], fn func(context.Context, *Req) (*Resp, error)) (*connect.Response[Resp], error) {
	resp, err := lead(ctx, m, req.Spec().Procedure, req.Header(), req.Msg, fn)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(resp), nil
}

// lead runs fn(req) on the leader: at once when this master leads, else it
// hands the request to the leader over the journal and decodes its
// answer. While no leader is known it waits up to ForwardHold.
func lead[Req, Resp any](ctx context.Context, m *Master, procedure string, h http.Header, req *Req, fn func(context.Context, *Req) (*Resp, error)) (*Resp, error) {
	rid := requestID(h)
	ctx = withRequestIDValue(ctx, rid)
	var resp *Resp
	call := journal.Call{Method: procedure, RequestID: rid, Caller: callerName(ctx), Encode: func() ([]byte, error) {
		return proto.Marshal(any(req).(proto.Message))
	}}
	answer, err := m.j.Lead(ctx, m.cfg.ForwardHold, call, func(ctx context.Context) error {
		var err error
		resp, err = fn(ctx, req)
		return err
	})
	if err != nil {
		return nil, leadErr(procedure, err)
	}
	if resp == nil {
		resp = new(Resp)
		if err := proto.Unmarshal(answer, any(resp).(proto.Message)); err != nil {
			return nil, connect.NewError(connect.CodeInternal, fmt.Errorf("decode the leader's answer to %s: %w", procedure, err))
		}
	}
	return resp, nil
}

// requestIDHeader carries a caller's request id into the events it causes.
const requestIDHeader = "Cairn-Request-Id"

// requestID is the caller's request id from h, if it has a usable one.
func requestID(h http.Header) string {
	if id := h.Get(requestIDHeader); len(id) <= 128 {
		return id
	}
	return ""
}

type requestIDKey struct{}

// withRequestIDValue carries a request id in ctx to the events a leader
// function writes.
func withRequestIDValue(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, requestIDKey{}, id)
}

// callerName is the name of the token a call carries ("" with --insecure,
// and for the leader's own work).
func callerName(ctx context.Context) string {
	p, _ := auth.FromContext(ctx)
	return p.Name
}

// fromCaller copies the caller's request id and the name of its token (for
// audit) from ctx into ev.
func fromCaller(ctx context.Context, ev *cairnv1.Event) *cairnv1.Event {
	if id, _ := ctx.Value(requestIDKey{}).(string); id != "" {
		ev.RequestId = id
	}
	ev.Actor = callerName(ctx)
	return ev
}
