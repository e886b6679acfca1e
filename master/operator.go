package master

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"connectrpc.com/connect"
	"github.com/hashicorp/raft"

	"github.com/cairnhq/cairn/journal"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

// operatorService serves raft membership, leadership and snapshots.
type operatorService struct{ m *Master }

var _ cairnv1connect.OperatorServiceHandler = (*operatorService)(nil)

func raftStateOf(s raft.RaftState) cairnv1.RaftState {
	switch s {
	case raft.Follower:
		return cairnv1.RaftState_RAFT_STATE_FOLLOWER
	case raft.Candidate:
		return cairnv1.RaftState_RAFT_STATE_CANDIDATE
	case raft.Leader:
		return cairnv1.RaftState_RAFT_STATE_LEADER
	case raft.Shutdown:
		return cairnv1.RaftState_RAFT_STATE_SHUTDOWN
	}
	return cairnv1.RaftState_RAFT_STATE_UNSPECIFIED
}

func (s *operatorService) GetStatus(ctx context.Context, _ *connect.Request[cairnv1.GetStatusRequest]) (*connect.Response[cairnv1.GetStatusResponse], error) {
	j := s.m.j
	leader, _ := j.Leader()
	clusterID := j.State().ClusterID()
	if clusterID == "" {
		clusterID = s.m.ident.ClusterID
	}
	return connect.NewResponse(&cairnv1.GetStatusResponse{
		MasterId:          s.m.cfg.ID,
		ClusterId:         clusterID,
		RaftState:         raftStateOf(j.RaftState()),
		LeaderId:          leader,
		Term:              j.Term(),
		AppliedIndex:      j.State().AppliedIndex(),
		DurableIndex:      j.State().DurableIndex(),
		StartAppliedIndex: j.StartAppliedIndex(),
		SnapshotIndex:     j.SnapshotIndex(),
		Epoch:             j.State().ClusterMap().GetEpoch(),
		ApiAddress:        s.m.cfg.APIAdvertise,
		RaftAddress:       j.RaftAddress(),
	}), nil
}

func (s *operatorService) ListRaftPeers(ctx context.Context, _ *connect.Request[cairnv1.ListRaftPeersRequest]) (*connect.Response[cairnv1.ListRaftPeersResponse], error) {
	servers, err := s.m.j.Servers()
	if err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, err)
	}
	leader, _ := s.m.j.Leader()
	resp := &cairnv1.ListRaftPeersResponse{LeaderId: leader}
	for _, sv := range servers {
		p := &cairnv1.RaftPeer{MasterId: sv.ID, RaftAddress: sv.Address, Voter: sv.Voter, Leader: sv.ID == leader}
		if adv, ok, err := s.m.j.State().Master(sv.ID); err == nil && ok {
			p.ApiAddress = adv.GetApiAddress()
		}
		resp.Peers = append(resp.Peers, p)
	}
	return connect.NewResponse(resp), nil
}

func (s *operatorService) TransferLeadership(ctx context.Context, req *connect.Request[cairnv1.TransferLeadershipRequest]) (*connect.Response[cairnv1.TransferLeadershipResponse], error) {
	return onLeader(ctx, s.m, req, s.transferLeadership)
}

func (s *operatorService) transferLeadership(ctx context.Context, msg *cairnv1.TransferLeadershipRequest) (*cairnv1.TransferLeadershipResponse, error) {
	target := msg.GetTargetId()
	if target == s.m.cfg.ID {
		return &cairnv1.TransferLeadershipResponse{LeaderId: target}, nil
	}
	changed := s.m.j.LeaderChanged()
	if err := s.m.j.TransferLeadership(target); err != nil {
		if errors.Is(err, journal.ErrUnknownServer) {
			return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("%w; list the voters with: cairn operator raft peers", err))
		}
		return nil, journalErr("transfer leadership", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		if id, _ := s.m.j.Leader(); id != "" && id != s.m.cfg.ID {
			s.m.log.Info("leadership transferred", "to", id)
			return &cairnv1.TransferLeadershipResponse{LeaderId: id}, nil
		}
		select {
		case <-changed:
			changed = s.m.j.LeaderChanged()
		case <-ctx.Done():
			return nil, connect.NewError(connect.CodeDeadlineExceeded, errors.New("leadership was handed over but no new leader is known yet; check with: cairn operator raft peers"))
		}
	}
}

func (s *operatorService) JoinCluster(ctx context.Context, req *connect.Request[cairnv1.JoinClusterRequest]) (*connect.Response[cairnv1.JoinClusterResponse], error) {
	return onLeader(ctx, s.m, req, s.joinCluster)
}

func (s *operatorService) joinCluster(ctx context.Context, msg *cairnv1.JoinClusterRequest) (*cairnv1.JoinClusterResponse, error) {
	ours := s.m.j.State().ClusterID()
	if ours == "" {
		// A leader that has not yet journaled its cluster's id (it was just
		// bootstrapped): the joiner waits and asks again.
		return nil, connect.NewError(connect.CodeUnavailable, errors.New("this cluster has not recorded its id yet (its first master is starting); try again in a moment"))
	}
	if msg.GetClusterId() != "" && msg.GetClusterId() != ours {
		return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf(
			"master %s belongs to cluster %s, but this is cluster %s: a master cannot move between clusters; start it on an empty data folder to join this one",
			msg.GetMasterId(), msg.GetClusterId(), ours))
	}
	secret, err := s.m.ident.Secret()
	if err != nil {
		return nil, internal(err)
	}
	resp := &cairnv1.JoinClusterResponse{ClusterId: ours, ClusterSecret: secret}
	if msg.GetPrepare() {
		return resp, nil
	}
	if err := s.m.j.AddVoter(msg.GetMasterId(), msg.GetRaftAddress()); err != nil {
		return nil, journalErr("add voter "+msg.GetMasterId(), err)
	}
	if _, _, err := s.m.propose(ctx, "advertise master "+msg.GetMasterId(),
		s.m.advertisement(msg.GetMasterId(), msg.GetApiAddress(), msg.GetRaftAddress())); err != nil {
		return nil, err
	}
	s.m.log.Info("master joined", "joined", msg.GetMasterId(), "raft", msg.GetRaftAddress(), "api", msg.GetApiAddress())
	return resp, nil
}

func (s *operatorService) RemovePeer(ctx context.Context, req *connect.Request[cairnv1.RemovePeerRequest]) (*connect.Response[cairnv1.RemovePeerResponse], error) {
	return onLeader(ctx, s.m, req, s.removePeer)
}

func (s *operatorService) removePeer(ctx context.Context, msg *cairnv1.RemovePeerRequest) (*cairnv1.RemovePeerResponse, error) {
	id := msg.GetMasterId()
	servers, err := s.m.j.Servers()
	if err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, err)
	}
	found := false
	for _, sv := range servers {
		found = found || sv.ID == id
	}
	if !found {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("master %s is not a raft peer; list them with: cairn operator raft peers", id))
	}
	removed := &cairnv1.Event{Kind: &cairnv1.Event_MasterRemoved{MasterRemoved: &cairnv1.MasterRemoved{MasterId: id}}}
	// Journal the removal first: once the leader removes itself it can no
	// longer write.
	if _, _, err := s.m.propose(ctx, "record removal of "+id, removed); err != nil {
		return nil, err
	}
	if err := s.m.j.RemoveServer(id); err != nil {
		return nil, journalErr("remove "+id, err)
	}
	s.m.log.Info("master removed from the raft configuration", "removed", id)
	return &cairnv1.RemovePeerResponse{}, nil
}

// snapshotChunk is the size of the pieces SaveSnapshot streams.
const snapshotChunk = 1 << 20

func (s *operatorService) SaveSnapshot(ctx context.Context, _ *connect.Request[cairnv1.SaveSnapshotRequest], stream *connect.ServerStream[cairnv1.SaveSnapshotResponse]) error {
	meta, rc, err := s.m.j.TakeSnapshot()
	if err != nil {
		return connect.NewError(connect.CodeUnavailable, err)
	}
	defer rc.Close()
	buf := make([]byte, snapshotChunk)
	first := true
	for {
		n, rerr := io.ReadFull(rc, buf)
		if n > 0 || first {
			msg := &cairnv1.SaveSnapshotResponse{Chunk: buf[:n]}
			if first {
				msg.Index, msg.Term = meta.Index, meta.Term
				first = false
			}
			if err := stream.Send(msg); err != nil {
				return err
			}
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			return nil
		}
		if rerr != nil {
			return connect.NewError(connect.CodeInternal, fmt.Errorf("read snapshot %d: %w", meta.Index, rerr))
		}
	}
}
