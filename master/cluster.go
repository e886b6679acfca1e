package master

import (
	"context"
	"fmt"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

// clusterService serves the cluster map and worker membership.
type clusterService struct{ m *Master }

var _ cairnv1connect.ClusterServiceHandler = (*clusterService)(nil)

func (s *clusterService) GetClusterMap(ctx context.Context, req *connect.Request[cairnv1.GetClusterMapRequest]) (*connect.Response[cairnv1.GetClusterMapResponse], error) {
	st := s.m.j.State()
	cm := st.ClusterMap()
	if e := req.Msg.GetEpoch(); e != 0 && e != cm.GetEpoch() {
		at, ok, err := st.ClusterMapAt(e)
		if err != nil {
			return nil, internal(err)
		}
		if !ok {
			return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("epoch %d does not exist; the current epoch is %d", e, cm.GetEpoch()))
		}
		cm = at
	}
	workers, err := st.Workers()
	if err != nil {
		return nil, internal(err)
	}
	return connect.NewResponse(&cairnv1.GetClusterMapResponse{Map: cm, Workers: workers, ClusterId: st.ClusterID()}), nil
}

func (s *clusterService) WatchClusterMap(ctx context.Context, req *connect.Request[cairnv1.WatchClusterMapRequest], stream *connect.ServerStream[cairnv1.WatchClusterMapResponse]) error {
	st := s.m.j.State()
	after := req.Msg.GetAfterEpoch()
	for {
		changed := st.Changed()
		cur := st.ClusterMap()
		switch {
		case after == 0 || after > cur.GetEpoch():
			// First call, or a watcher ahead of this master (it followed
			// another one and asked for a stale read here): send what this
			// master has.
			if err := stream.Send(&cairnv1.WatchClusterMapResponse{Map: cur}); err != nil {
				return err
			}
			after = cur.GetEpoch()
		case cur.GetEpoch() > after:
			for e := after + 1; e <= cur.GetEpoch(); e++ {
				cm, ok, err := st.ClusterMapAt(e)
				if err != nil {
					return internal(err)
				}
				if !ok {
					continue
				}
				if err := stream.Send(&cairnv1.WatchClusterMapResponse{Map: cm}); err != nil {
					return err
				}
			}
			after = cur.GetEpoch()
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		case <-s.m.stop:
			return s.m.errShuttingDown("watch")
		}
	}
}

func (s *clusterService) RegisterWorker(ctx context.Context, req *connect.Request[cairnv1.RegisterWorkerRequest]) (*connect.Response[cairnv1.RegisterWorkerResponse], error) {
	return onLeader(ctx, s.m, req, s.registerWorker)
}

func (s *clusterService) registerWorker(ctx context.Context, msg *cairnv1.RegisterWorkerRequest) (*cairnv1.RegisterWorkerResponse, error) {
	r, err := s.m.proposeOne(ctx, "register worker "+msg.GetWorkerId(), fromCaller(ctx, &cairnv1.Event{
		Kind: &cairnv1.Event_WorkerRegistered{WorkerRegistered: &cairnv1.WorkerRegistered{
			WorkerId: msg.GetWorkerId(), Address: msg.GetAddress(), CapacityBytes: msg.GetCapacityBytes()}}}))
	if err != nil {
		return nil, err
	}
	s.m.liveness.seen(msg.GetWorkerId(), time.Now())
	w, _ := r.Record.(*cairnv1.Worker)
	s.m.log.Info("worker registered", "worker", msg.GetWorkerId(), "address", msg.GetAddress(), "state", stateLabel(w.GetState()), "epoch", r.Epoch)
	return &cairnv1.RegisterWorkerResponse{Worker: w, Epoch: r.Epoch, HeartbeatInterval: durationpb.New(s.m.cfg.HeartbeatInterval)}, nil
}

// Heartbeat runs on the leader: worker liveness is the leader's clock.
func (s *clusterService) Heartbeat(ctx context.Context, req *connect.Request[cairnv1.HeartbeatRequest]) (*connect.Response[cairnv1.HeartbeatResponse], error) {
	return onLeader(ctx, s.m, req, s.heartbeat)
}

func (s *clusterService) heartbeat(ctx context.Context, msg *cairnv1.HeartbeatRequest) (*cairnv1.HeartbeatResponse, error) {
	id := msg.GetWorkerId()
	st := s.m.j.State()
	w, ok, err := st.Worker(id)
	if err != nil {
		return nil, internal(err)
	}
	if !ok {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("worker %s is not registered; register it first", id))
	}
	s.m.liveness.seen(id, time.Now())
	switch w.GetState() {
	case cairnv1.WorkerState_WORKER_STATE_DOWN:
		r, err := s.m.proposeOne(ctx, "mark worker "+id+" up", fromCaller(ctx, &cairnv1.Event{
			Kind: &cairnv1.Event_WorkerUp{WorkerUp: &cairnv1.WorkerUp{WorkerId: id}}}))
		if err != nil {
			return nil, err
		}
		s.m.log.Info("worker is back: heartbeats resumed", "worker", id, "epoch", r.Epoch)
		w, _ = r.Record.(*cairnv1.Worker)
	case cairnv1.WorkerState_WORKER_STATE_REMOVED:
		return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("worker %s was removed; register it again to rejoin", id))
	}
	drifts, err := st.UfsDrifts()
	if err != nil {
		return nil, internal(err)
	}
	set, err := st.Settings()
	if err != nil {
		return nil, internal(err)
	}
	return &cairnv1.HeartbeatResponse{Epoch: st.ClusterMap().GetEpoch(), State: w.GetState(),
		UfsDrifts: drifts, PartialCachingOff: !set.GetPartialCaching()}, nil
}

func (s *clusterService) SetReplication(ctx context.Context, req *connect.Request[cairnv1.SetReplicationRequest]) (*connect.Response[cairnv1.SetReplicationResponse], error) {
	return onLeader(ctx, s.m, req, s.setReplication)
}

func (s *clusterService) setReplication(ctx context.Context, msg *cairnv1.SetReplicationRequest) (*cairnv1.SetReplicationResponse, error) {
	if _, _, err := s.m.propose(ctx, "set replication", fromCaller(ctx, &cairnv1.Event{
		Kind: &cairnv1.Event_ReplicationSet{ReplicationSet: &cairnv1.ReplicationSet{Replication: msg.GetReplication()}}})); err != nil {
		return nil, err
	}
	return &cairnv1.SetReplicationResponse{Map: s.m.j.State().ClusterMap()}, nil
}

// changeWorker journals one worker transition and answers with the worker
// and the epoch after it.
func (s *clusterService) changeWorker(ctx context.Context, what, id string, ev *cairnv1.Event) (*cairnv1.Worker, uint64, error) {
	r, err := s.m.proposeOne(ctx, what+" worker "+id, fromCaller(ctx, ev))
	if err != nil {
		return nil, 0, err
	}
	w, _ := r.Record.(*cairnv1.Worker)
	s.m.log.Info("worker state changed", "worker", id, "state", stateLabel(w.GetState()), "reason", w.GetStateReason(), "epoch", r.Epoch)
	return w, r.Epoch, nil
}

func (s *clusterService) MaintainWorker(ctx context.Context, req *connect.Request[cairnv1.MaintainWorkerRequest]) (*connect.Response[cairnv1.MaintainWorkerResponse], error) {
	return onLeader(ctx, s.m, req, s.maintainWorker)
}

func (s *clusterService) maintainWorker(ctx context.Context, msg *cairnv1.MaintainWorkerRequest) (*cairnv1.MaintainWorkerResponse, error) {
	w, epoch, err := s.changeWorker(ctx, "maintain", msg.GetWorkerId(), &cairnv1.Event{
		Kind: &cairnv1.Event_WorkerMaintenanceStarted{WorkerMaintenanceStarted: &cairnv1.WorkerMaintenanceStarted{
			WorkerId: msg.GetWorkerId(), Reason: msg.GetReason()}}})
	if err != nil {
		return nil, err
	}
	return &cairnv1.MaintainWorkerResponse{Worker: w, Epoch: epoch}, nil
}

func (s *clusterService) ActivateWorker(ctx context.Context, req *connect.Request[cairnv1.ActivateWorkerRequest]) (*connect.Response[cairnv1.ActivateWorkerResponse], error) {
	return onLeader(ctx, s.m, req, s.activateWorker)
}

func (s *clusterService) activateWorker(ctx context.Context, msg *cairnv1.ActivateWorkerRequest) (*cairnv1.ActivateWorkerResponse, error) {
	w, epoch, err := s.changeWorker(ctx, "activate", msg.GetWorkerId(), &cairnv1.Event{
		Kind: &cairnv1.Event_WorkerActivated{WorkerActivated: &cairnv1.WorkerActivated{
			WorkerId: msg.GetWorkerId(), Reason: msg.GetReason()}}})
	if err != nil {
		return nil, err
	}
	// The worker may have been silent while in maintenance: give it a full
	// timeout from now.
	s.m.liveness.seen(msg.GetWorkerId(), time.Now())
	return &cairnv1.ActivateWorkerResponse{Worker: w, Epoch: epoch}, nil
}

func (s *clusterService) DecommissionWorker(ctx context.Context, req *connect.Request[cairnv1.DecommissionWorkerRequest]) (*connect.Response[cairnv1.DecommissionWorkerResponse], error) {
	return onLeader(ctx, s.m, req, s.decommissionWorker)
}

func (s *clusterService) decommissionWorker(ctx context.Context, msg *cairnv1.DecommissionWorkerRequest) (*cairnv1.DecommissionWorkerResponse, error) {
	w, epoch, err := s.changeWorker(ctx, "decommission", msg.GetWorkerId(), &cairnv1.Event{
		Kind: &cairnv1.Event_WorkerDecommissioned{WorkerDecommissioned: &cairnv1.WorkerDecommissioned{
			WorkerId: msg.GetWorkerId(), Reason: msg.GetReason()}}})
	if err != nil {
		return nil, err
	}
	return &cairnv1.DecommissionWorkerResponse{Worker: w, Epoch: epoch}, nil
}
