package master

import (
	"context"
	"time"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// mount runs on the leader: it journals the mounts this master's flags
// ask for (--ufs at /, --cache-only-mount) where the journal lacks them.
// Its --ufs at / gives way to a mount of / an operator made.
func (m *Master) mount(ctx context.Context) {
	st := m.j.State()
	evs, refused, err := mountsToJournal(m.mountEvents(), st.CheckMount)
	if err != nil {
		m.log.Error("read the mount table", "err", err)
		return
	}
	for _, r := range refused {
		m.log.Error("a mount this master's flags ask for is refused", "err", r)
	}
	if len(evs) == 0 {
		return
	}
	var batch []*cairnv1.Event
	for _, e := range evs {
		batch = append(batch, &cairnv1.Event{Kind: &cairnv1.Event_UfsMounted{UfsMounted: e}})
	}
	for ctx.Err() == nil {
		_, _, err := m.propose(ctx, "mount the UFS", batch...)
		if err == nil {
			m.log.Info("mount table updated", "ufs_root", m.ufsRoot, "cache_only_mount", m.cfg.CacheOnlyMount)
			return
		}
		m.log.Warn("mount the UFS", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// advertise runs on the leader: it records the cluster id if the journal
// lacks it and this master's addresses, so other masters can forward to it.
func (m *Master) advertise(ctx context.Context) {
	var evs []*cairnv1.Event
	st := m.j.State()
	if st.ClusterID() == "" {
		evs = append(evs, &cairnv1.Event{Kind: &cairnv1.Event_ClusterInitialized{ClusterInitialized: &cairnv1.ClusterInitialized{ClusterId: m.ident.ClusterID}}})
	}
	self, found, err := st.Master(m.cfg.ID)
	if err != nil || !found || self.GetApiAddress() != m.cfg.APIAdvertise || self.GetRaftAddress() != m.j.RaftAddress() {
		evs = append(evs, m.advertisement(m.cfg.ID, m.cfg.APIAdvertise, m.j.RaftAddress()))
	}
	if len(evs) == 0 {
		return
	}
	for ctx.Err() == nil {
		res, _, err := m.j.Propose(ctx, evs...)
		if err == nil {
			for _, r := range res {
				if r.Code != 0 {
					m.log.Error("leader advertisement rejected", "err", r.Message)
				}
			}
			return
		}
		m.log.Warn("advertise leader", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (m *Master) advertisement(id, api, raftAddr string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_MasterAdvertised{MasterAdvertised: &cairnv1.MasterAdvertised{
		MasterId: id, ApiAddress: api, RaftAddress: raftAddr}}}
}
