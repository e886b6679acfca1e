package journal

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/raft"
)

// Server is one member of the raft configuration.
type Server struct {
	ID      string
	Address string
	Voter   bool
}

// Servers returns the latest raft configuration.
func (j *Journal) Servers() ([]Server, error) {
	f := j.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("raft configuration: %w", err)
	}
	var out []Server
	for _, s := range f.Configuration().Servers {
		out = append(out, Server{ID: string(s.ID), Address: string(s.Address), Voter: s.Suffrage == raft.Voter})
	}
	return out, nil
}

// AddVoter adds (or updates the address of) a voter. Leader only.
func (j *Journal) AddVoter(id, addr string) error {
	if err := j.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 10*time.Second).Error(); err != nil {
		return leaderErr(fmt.Errorf("add voter %s at %s: %w", id, addr, err))
	}
	return nil
}

// RemoveServer removes a server from the configuration. Leader only.
func (j *Journal) RemoveServer(id string) error {
	if err := j.raft.RemoveServer(raft.ServerID(id), 0, 10*time.Second).Error(); err != nil {
		return leaderErr(fmt.Errorf("remove %s: %w", id, err))
	}
	return nil
}

// TransferLeadership hands leadership to the voter id, or to the most
// caught-up voter when id is empty. Leader only.
func (j *Journal) TransferLeadership(id string) error {
	var f raft.Future
	if id == "" {
		f = j.raft.LeadershipTransfer()
	} else {
		servers, err := j.Servers()
		if err != nil {
			return err
		}
		addr := ""
		for _, s := range servers {
			if s.ID == id && s.Voter {
				addr = s.Address
			}
		}
		if addr == "" {
			return fmt.Errorf("%w: %s is not a voter", ErrUnknownServer, id)
		}
		f = j.raft.LeadershipTransferToServer(raft.ServerID(id), raft.ServerAddress(addr))
	}
	if err := f.Error(); err != nil {
		return leaderErr(fmt.Errorf("transfer leadership: %w", err))
	}
	return nil
}

// ErrUnknownServer is wrapped when a named server is not in the configuration.
var ErrUnknownServer = errors.New("unknown server")

func leaderErr(err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		return fmt.Errorf("%w: %v", ErrNotLeader, err)
	}
	return err
}

// SnapshotMeta describes a raft snapshot.
type SnapshotMeta struct {
	Index, Term uint64
	Size        int64
}

// TakeSnapshot makes raft take a snapshot now (or reuses the newest one
// when nothing was applied since) and opens it for reading. The caller
// closes the reader.
func (j *Journal) TakeSnapshot() (SnapshotMeta, io.ReadCloser, error) {
	f := j.raft.Snapshot()
	err := f.Error()
	if err == nil {
		meta, rc, err := f.Open()
		if err != nil {
			return SnapshotMeta{}, nil, fmt.Errorf("open snapshot: %w", err)
		}
		return SnapshotMeta{Index: meta.Index, Term: meta.Term, Size: meta.Size}, rc, nil
	}
	if !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return SnapshotMeta{}, nil, fmt.Errorf("take snapshot: %w", err)
	}
	snaps, lerr := j.snaps.List()
	if lerr != nil || len(snaps) == 0 {
		return SnapshotMeta{}, nil, fmt.Errorf("take snapshot: %w (and no earlier snapshot: %v)", err, lerr)
	}
	meta, rc, err := j.snaps.Open(snaps[0].ID)
	if err != nil {
		return SnapshotMeta{}, nil, fmt.Errorf("open snapshot %s: %w", snaps[0].ID, err)
	}
	return SnapshotMeta{Index: meta.Index, Term: meta.Term, Size: meta.Size}, rc, nil
}
