package jobs

import (
	"time"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// The cleanup decision: what a CLEANUP task does with one local copy. It
// is pure (no I/O, no clock) so that the worker and the randomized safety
// campaign run the same rules.

// DefaultDontCleanupTime is the cleanup safety window when the cluster
// setting was never changed: 2h, as AIStore's dont_cleanup_time.
const DefaultDontCleanupTime = 2 * time.Hour

// CleanupCopy is what a worker knows of one of its cached copies.
type CleanupCopy struct {
	// Version is the copy's version.
	Version uint64
	// Unpersisted: the worker recorded the copy as not yet in the UFS.
	Unpersisted bool
	// Cached is when the copy was written on this worker, by the worker's
	// own clock (the same clock as CleanupScope.Now).
	Cached time.Time
}

// CleanupScope is what one task decides by: the job's options and the
// moment the task started.
type CleanupScope struct {
	// Force: the job's --force.
	Force bool
	// Window is the job's dont_cleanup_time.
	Window time.Duration
	// Now is when the task started, by the worker's clock. A copy cached
	// after Now-Window is inside the window.
	Now time.Time
}

// Recent reports whether a copy cached at cached is inside the window: it
// was cached after Now-Window. Both times are the worker's own, so clock
// skew between worker and leader cannot age a copy. A copy cached after
// the task started is always inside, even with a zero window.
func (s CleanupScope) Recent(cached time.Time) bool {
	return cached.After(s.Now.Add(-s.Window))
}

// CleanupStep is what to do with a copy after looking it up in the
// namespace.
type CleanupStep int

const (
	// CleanupKeep keeps the copy.
	CleanupKeep CleanupStep = iota
	// CleanupRemove removes the copy.
	CleanupRemove
	// CleanupAskOwners asks its owners under the job's map for their
	// identity of the path, then decides with CleanupVerdict.
	CleanupAskOwners
)

// CleanupTriage decides on a copy from the namespace: f is the namespace's
// record of its path (nil: the namespace has no such file), pending the
// version of a write of the path in progress (0: none), owned whether this
// worker owns the path under the job's map. It returns the step and what to
// count for it (nil: nothing). The rules, in order:
//
//   - a copy of the write in progress, or a current copy this worker owns,
//     stays (not counted);
//   - a copy inside the window stays (kept_recent) — whatever else holds;
//   - a copy of a deleted file goes (deleted), one of another version than
//     the namespace's goes (stale_version);
//   - any other (current, not owned here) is checked at its owners.
func CleanupTriage(c CleanupCopy, f *cairnv1.File, pending uint64, owned bool, s CleanupScope) (CleanupStep, *cairnv1.Counters) {
	current := f != nil && c.Version == f.GetVersion()
	switch {
	case pending != 0 && pending == c.Version:
		return CleanupKeep, nil
	case current && owned:
		return CleanupKeep, nil
	case s.Recent(c.Cached):
		return CleanupKeep, &cairnv1.Counters{KeptRecent: 1}
	case f == nil:
		return CleanupRemove, &cairnv1.Counters{Deleted: 1}
	case !current:
		return CleanupRemove, &cairnv1.Counters{StaleVersion: 1}
	default:
		return CleanupAskOwners, nil
	}
}

// OwnerAnswer is what one owner (other than the deciding worker) said
// about a path.
type OwnerAnswer int

// Owner answers, from the least to the most telling.
const (
	// OwnerLacks: the owner was reached and holds no copy.
	OwnerLacks OwnerAnswer = iota
	// OwnerUnreachable: the owner could not be asked.
	OwnerUnreachable
	// OwnerDiverged: the owner was reached and holds a copy of another
	// identity.
	OwnerDiverged
	// OwnerSame: the owner was reached and holds the same identity.
	OwnerSame
)

// CleanupVerdict decides on a current copy this worker does not own, from
// what its other owners said and whether the file is persisted (the
// namespace says PERSISTED and the copy is not marked unpersisted). It
// returns the step (CleanupKeep or CleanupRemove) and what to count.
//
// The copy goes when an owner holds the same identity. With force, it also
// goes when the file is persisted and an owner was reached and holds some
// (diverged) copy: AIStore's rule that force never skips confirming that
// the expected owner holds a copy. An owner that could not be reached, or
// that lacks the file, never lets a copy go, force or not; neither does
// anything let the copy of an unpersisted file go unless an owner holds the
// same bytes.
func CleanupVerdict(answers []OwnerAnswer, persisted bool, s CleanupScope) (CleanupStep, *cairnv1.Counters) {
	best := OwnerLacks
	for _, a := range answers {
		best = max(best, a)
	}
	switch {
	case best == OwnerSame:
		return CleanupRemove, &cairnv1.Counters{}
	case s.Force && persisted && best == OwnerDiverged:
		return CleanupRemove, &cairnv1.Counters{Forced: 1}
	case best == OwnerDiverged:
		return CleanupKeep, &cairnv1.Counters{KeptDiverged: 1}
	case best == OwnerUnreachable:
		return CleanupKeep, &cairnv1.Counters{KeptUnverified: 1}
	default:
		return CleanupKeep, &cairnv1.Counters{KeptPeerMissing: 1}
	}
}

// Persisted reports whether a copy of f counts as persisted for cleanup:
// the namespace says PERSISTED and the worker did not record the copy as
// unpersisted.
func Persisted(f *cairnv1.File, c CleanupCopy) bool {
	return f.GetPersistenceState() == cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED && !c.Unpersisted
}
