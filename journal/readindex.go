package journal

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Linearizable reads (read-index, Raft thesis §6.4): the leader takes its
// commit index, confirms with a quorum that it still leads, and hands the
// index out; a node that waits until its state has applied that index
// answers a read that reflects every write committed before the read
// began. Followers ask the leader for the index over the forward
// connection. Confirmations are batched: every request that arrives while
// a round is under way waits for the next round, and one round answers
// them all.

// readBatcher runs read-index rounds for the requests that wait for one:
// every request that arrives while a round is under way waits for the
// next round, and one round answers all of its requests. A journal has
// two: the leader's rounds (confirm leadership, take the commit index) and
// a follower's (one request to the leader for all of its waiting reads).
type readBatcher struct {
	round   func() (uint64, error)
	mu      sync.Mutex
	pending *readRound // the round the next requests wait for; nil when none waits
	running bool
}

// readRound is one round's answer, shared by every request that waits for
// it: done closes once index and err are set.
type readRound struct {
	done  chan struct{}
	index uint64
	err   error
}

// next waits for the next round's answer, until ctx ends, expired fires
// (nil: never) or stop closes.
func (b *readBatcher) next(ctx context.Context, expired <-chan time.Time, stop <-chan struct{}) (uint64, error) {
	b.mu.Lock()
	r := b.pending
	if r == nil {
		r = &readRound{done: make(chan struct{})}
		b.pending = r
	}
	if !b.running {
		b.running = true
		go b.rounds()
	}
	b.mu.Unlock()
	select {
	case <-r.done:
		return r.index, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-expired:
		return 0, context.DeadlineExceeded
	case <-stop:
		return 0, raft.ErrRaftShutdown
	}
}

// rounds runs rounds while requests wait.
func (b *readBatcher) rounds() {
	for {
		b.mu.Lock()
		r := b.pending
		b.pending = nil
		if r == nil {
			b.running = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		r.index, r.err = b.round()
		close(r.done)
	}
}

// ReadIndex returns an index such that a state machine that has applied it
// reflects every write committed before ReadIndex was called. The leader
// answers itself; a follower asks the leader, with one request for all the
// reads that wait at the time. While no leader is known, or the one asked
// no longer leads, it waits for the next until ctx ends; then it returns
// an error that wraps ErrNoLeader.
func (j *Journal) ReadIndex(ctx context.Context) (uint64, error) {
	return j.ReadIndexWithin(ctx, 0)
}

// readTimers are stopped timers for ReadIndexWithin: a read on the hot path
// arms one instead of deriving a context (an allocation, a timer and a
// registration with the parent context each).
var readTimers = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// ReadIndexWithin is ReadIndex that also gives up after limit (0: no limit
// but ctx's), with an error that wraps ErrNoLeader.
func (j *Journal) ReadIndexWithin(ctx context.Context, limit time.Duration) (uint64, error) {
	var expired <-chan time.Time
	if limit > 0 {
		t := readTimers.Get().(*time.Timer)
		t.Reset(limit)
		defer func() {
			t.Stop() // since Go 1.23 a stopped timer's channel holds nothing stale
			readTimers.Put(t)
		}()
		expired = t.C
	}
	idx, err := j.readIndex(ctx, expired)
	outcome := "ok"
	if err != nil {
		outcome = "failed"
		if errors.Is(err, ErrNoLeader) {
			outcome = "no_leader"
		}
	}
	j.metrics.readIndex.WithLabelValues(outcome).Inc()
	return idx, err
}

// errNoLeaderKnown is a follower round's answer while no leader is known.
var errNoLeaderKnown = errors.New("no leader known")

func (j *Journal) readIndex(ctx context.Context, expired <-chan time.Time) (uint64, error) {
	var last error
	for {
		changed := j.LeaderChanged()
		b := &j.followerReads
		if j.IsLeader() {
			b = &j.leaderReads
		}
		idx, err := b.next(ctx, expired, j.stop)
		if err == nil || !(Refused(err) || errors.Is(err, errNotSent) || errors.Is(err, errNoLeaderKnown)) {
			return idx, err
		}
		last = err
		select {
		case <-changed:
		case <-time.After(forwardRetryPause):
		case <-ctx.Done():
			return 0, fmt.Errorf("%w: %v (%v)", ErrNoLeader, ctx.Err(), last)
		case <-expired:
			return 0, fmt.Errorf("%w: no answer within the read's limit (%v)", ErrNoLeader, last)
		case <-j.stop:
			return 0, raft.ErrRaftShutdown
		}
	}
}

// leaderReadIndex waits for the next leader round, for a follower's
// request. An error for which Refused is true means this node does not
// lead (any more).
func (j *Journal) leaderReadIndex(ctx context.Context) (uint64, error) {
	return j.leaderReads.next(ctx, nil, j.stop)
}

// followerReadRound asks the leader for its read index once, for every
// read waiting on this follower.
func (j *Journal) followerReadRound() (uint64, error) {
	if j.IsLeader() {
		return 0, fmt.Errorf("this node leads now: %w", errNotSent) // its reads ask itself next
	}
	id, addr := j.Leader()
	if id == "" {
		return 0, errNoLeaderKnown
	}
	if j.fwd == nil {
		return 0, ErrNotLeader // an injected transport: nowhere to ask
	}
	ctx, cancel := context.WithTimeout(context.Background(), j.cfg.ElectionTimeout+j.cfg.LeaderLeaseTimeout)
	defer cancel()
	j.metrics.readIndexRemote.Inc()
	return j.fwd.readIndex(ctx, addr)
}

// leaderReadRound takes the commit index and confirms leadership once.
func (j *Journal) leaderReadRound() (uint64, error) {
	j.metrics.readIndexRounds.Inc()
	// A leader's commit index is only sure to cover every earlier write
	// once an entry of its own term has committed: the barrier that
	// starts its leader work marks that moment (ready).
	gen, err := j.waitReady()
	if err != nil {
		return 0, err
	}
	idx := j.raft.CommitIndex()
	ctx, cancel := context.WithTimeout(context.Background(), j.cfg.ElectionTimeout+j.cfg.LeaderLeaseTimeout)
	defer cancel()
	if err := j.await(ctx, j.raft.VerifyLeader()); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return 0, fmt.Errorf("%w: %v", ErrNotLeader, err)
		}
		return 0, fmt.Errorf("confirm leadership: %w", err)
	}
	if j.leaderGen.Load() != gen {
		return 0, fmt.Errorf("%w: leadership changed during the read", ErrNotLeader)
	}
	return idx, nil
}

// waitReady waits (up to an election timeout) until this node leads and
// its leadership is ready, and returns the leadership's generation.
func (j *Journal) waitReady() (uint64, error) {
	deadline := time.After(j.cfg.ElectionTimeout)
	for {
		ch := j.readyChanged()
		gen := j.leaderGen.Load()
		if !j.IsLeader() {
			return 0, ErrNotLeader
		}
		if gen != 0 && j.readyGen.Load() == gen {
			return gen, nil
		}
		select {
		case <-ch:
		case <-deadline:
			return 0, fmt.Errorf("%w: this leader was just elected and has not yet committed an entry of its term", ErrNotLeader)
		case <-j.stop:
			return 0, raft.ErrRaftShutdown
		}
	}
}

// readyChanged returns a channel closed the next time a leadership of
// this node becomes ready.
func (j *Journal) readyChanged() <-chan struct{} {
	j.leaderMu.Lock()
	defer j.leaderMu.Unlock()
	return j.readyCh
}

// markReady records that leadership generation gen is ready.
func (j *Journal) markReady(gen uint64) {
	j.leaderMu.Lock()
	defer j.leaderMu.Unlock()
	j.readyGen.Store(gen)
	close(j.readyCh)
	j.readyCh = make(chan struct{})
}

// LastLeaderContact is when this node last heard from a leader: now on
// the leader itself, zero if never.
func (j *Journal) LastLeaderContact() time.Time {
	if j.IsLeader() {
		return time.Now()
	}
	return j.raft.LastContact()
}
