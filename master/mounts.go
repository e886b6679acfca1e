package master

import (
	"context"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"

	"github.com/cairnhq/cairn/apiserver"
	"github.com/cairnhq/cairn/fsm"
	"github.com/cairnhq/cairn/persistence"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// probeTimeout bounds the leader's check of a store before it mounts it.
const probeTimeout = 30 * time.Second

func (s *namespaceService) AddMount(ctx context.Context, req *connect.Request[cairnv1.AddMountRequest]) (*connect.Response[cairnv1.AddMountResponse], error) {
	return onLeader(ctx, s.m, req, s.addMount)
}

// addMount mounts a UFS at a path. Everything that can be checked is
// checked before anything is journaled: the form of the URI and options
// and whether the path is free (the state machine's own rules, asked of
// the leader's state), then the store itself, with this master's
// credentials (it answers, the bucket exists, listing is allowed). The
// state machine checks the path again when it applies the mount.
func (s *namespaceService) addMount(ctx context.Context, msg *cairnv1.AddMountRequest) (*cairnv1.AddMountResponse, error) {
	p, err := cleanPath(msg.GetPath())
	if err != nil {
		return nil, err
	}
	ev := &cairnv1.UfsMounted{Path: p, Uri: msg.GetUri(), Options: msg.GetOptions()}
	st := s.m.j.State()
	pre, err := st.CheckMount(ev)
	if err != nil {
		return nil, internal(err)
	}
	if err := resultErr(pre); err != nil {
		return nil, err
	}
	mt := pre.Record.(*cairnv1.Mount)
	if pre.Repeat {
		return &cairnv1.AddMountResponse{Mount: mt}, nil
	}
	if err := probe(ctx, mt); err != nil {
		return nil, err
	}
	ev.Uri, ev.Options, ev.UfsRoot = mt.GetUri(), mt.GetOptions(), mt.GetUfsRoot()
	r, err := s.m.proposeOne(ctx, "mount "+p, fromCaller(ctx, &cairnv1.Event{Kind: &cairnv1.Event_UfsMounted{UfsMounted: ev}}))
	if err != nil {
		return nil, err
	}
	if rec, ok := r.Record.(*cairnv1.Mount); ok {
		mt = rec
	}
	s.m.log.Info("mounted a UFS", "path", p, "uri", mt.GetUri())
	return &cairnv1.AddMountResponse{Mount: mt}, nil
}

// probe opens a mount's UFS on its own (not through the process's open
// mounts) and checks that it works. A mount that fails here is refused
// FailedPrecondition, also when the store does not answer: for a mount's
// first request that is most likely a wrong endpoint, which no retry of
// the client fixes.
func probe(ctx context.Context, mt *cairnv1.Mount) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	what := "mount " + persistence.Describe(mt)
	err := func() error {
		u, err := persistence.OpenMount(ctx, mt, nil)
		if err != nil {
			return apiserver.UFSError(what, err)
		}
		defer func() {
			if c, ok := u.(interface{ Close() error }); ok {
				c.Close()
			}
		}()
		if pr, ok := u.(persistence.Prober); ok {
			if err := pr.Probe(ctx); err != nil {
				return apiserver.UFSError(what+" (checked with this master's credentials: every master and worker needs them)", err)
			}
		}
		return nil
	}()
	if connect.CodeOf(err) == connect.CodeUnavailable {
		err = connect.NewError(connect.CodeFailedPrecondition, errors.Unwrap(err))
	}
	return err
}

func (s *namespaceService) RemoveMount(ctx context.Context, req *connect.Request[cairnv1.RemoveMountRequest]) (*connect.Response[cairnv1.RemoveMountResponse], error) {
	return onLeader(ctx, s.m, req, s.removeMount)
}

func (s *namespaceService) removeMount(ctx context.Context, msg *cairnv1.RemoveMountRequest) (*cairnv1.RemoveMountResponse, error) {
	p, err := cleanPath(msg.GetPath())
	if err != nil {
		return nil, err
	}
	pre, err := s.m.j.State().CheckUnmount(p)
	if err != nil {
		return nil, internal(err)
	}
	if err := resultErr(pre); err != nil {
		return nil, err
	}
	r, err := s.m.proposeOne(ctx, "unmount "+p, fromCaller(ctx, &cairnv1.Event{Kind: &cairnv1.Event_UfsUnmounted{UfsUnmounted: &cairnv1.UfsUnmounted{Path: p}}}))
	if err != nil {
		return nil, err
	}
	s.m.log.Info("unmounted a UFS", "path", p, "files_forgotten", r.Value)
	return &cairnv1.RemoveMountResponse{Forgotten: r.Value}, nil
}

// resolve finds the UFS that serves p under the journal's mount table.
func (m *Master) resolve(ctx context.Context, p string) (persistence.Target, error) {
	table, err := m.j.State().Mounts()
	if err != nil {
		return persistence.Target{}, internal(err)
	}
	t, err := m.mounts.Resolve(ctx, table, p)
	if err != nil {
		return persistence.Target{}, apiserver.UFSError("resolve "+p, err)
	}
	return t, nil
}

// mountEvents are the mounts this master's flags ask for: its --ufs
// folder at / (the default, which an operator's mount of / overrides) and
// the cache-only mount.
func (m *Master) mountEvents() []*cairnv1.UfsMounted {
	want := []*cairnv1.UfsMounted{{Path: "/", UfsRoot: m.ufsRoot, Uri: "file://" + m.ufsRoot, FromFlag: true}}
	if spec, err := persistence.ParseURI("file://"+m.ufsRoot, nil); err == nil {
		want[0].Uri = spec.URI()
	}
	if m.cfg.CacheOnlyMount != "" {
		want = append(want, &cairnv1.UfsMounted{Path: m.cfg.CacheOnlyMount, CacheOnly: true, Replication: m.cfg.CacheOnlyReplication})
	}
	return want
}

// mountsToJournal decides, of the flags' mounts, those the journal lacks:
// a check that is OK and not a repeat. A refused one is returned apart,
// to be logged (the flags conflict with the table; proposing it again and
// again would not help).
func mountsToJournal(want []*cairnv1.UfsMounted, check func(*cairnv1.UfsMounted) (fsm.Result, error)) (propose []*cairnv1.UfsMounted, refused []error, err error) {
	for _, w := range want {
		r, err := check(w)
		switch {
		case err != nil:
			return nil, nil, err
		case r.Code != fsm.OK:
			refused = append(refused, fmt.Errorf("mount %s: %s", w.GetPath(), r.Message))
		case !r.Repeat:
			propose = append(propose, w)
		}
	}
	return propose, refused, nil
}

// sweepEvery is how often the leader looks for interrupted uploads, and
// sweepAge how old one must be to be aborted: longer than any upload at
// work takes (a day moves terabytes), so only the parts of uploads whose
// writer died are swept.
const (
	sweepEvery = time.Hour
	sweepAge   = 24 * time.Hour
)

// runUploadSweep runs on the leader: once an hour it aborts the multipart
// uploads older than a day under every object-store mount, the parts an
// upload whose worker died left behind (they were never an object).
func (m *Master) runUploadSweep(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(sweepEvery):
		}
		table, err := m.j.State().Mounts()
		if err != nil {
			continue
		}
		for _, mt := range table {
			if mt.GetCacheOnly() {
				continue
			}
			u, err := m.mounts.Open(ctx, mt)
			if err != nil {
				m.log.Warn("sweep interrupted uploads", "mount", mt.GetPath(), "err", err)
				continue
			}
			sw, ok := u.(persistence.Sweeper)
			if !ok {
				continue
			}
			if n, err := sw.AbortInterruptedUploads(ctx, sweepAge); err != nil {
				m.log.Warn("sweep interrupted uploads", "mount", mt.GetPath(), "err", err)
			} else if n > 0 {
				m.log.Info("aborted interrupted uploads", "mount", mt.GetPath(), "uploads", n)
			}
		}
	}
}
