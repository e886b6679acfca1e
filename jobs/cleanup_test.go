package jobs

import (
	"testing"
	"time"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

func TestCleanupTriage(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	old := now.Add(-3 * time.Hour)
	fresh := now.Add(-time.Minute)
	file := &cairnv1.File{Path: "/a", Version: 5}
	win := CleanupScope{Window: 2 * time.Hour, Now: now}
	none := CleanupScope{Window: 0, Now: now}
	for _, tc := range []struct {
		name    string
		c       CleanupCopy
		f       *cairnv1.File
		pending uint64
		owned   bool
		s       CleanupScope
		step    CleanupStep
		count   *cairnv1.Counters
	}{
		{"write in progress", CleanupCopy{Version: 6, Cached: old}, file, 6, false, win, CleanupKeep, nil},
		{"current and owned", CleanupCopy{Version: 5, Cached: old}, file, 0, true, win, CleanupKeep, nil},
		{"owned, fresh: not counted as recent", CleanupCopy{Version: 5, Cached: fresh}, file, 0, true, win, CleanupKeep, nil},
		{"deleted, old", CleanupCopy{Version: 5, Cached: old}, nil, 0, false, win, CleanupRemove, &cairnv1.Counters{Deleted: 1}},
		{"deleted, fresh: the window keeps it", CleanupCopy{Version: 5, Cached: fresh}, nil, 0, false, win, CleanupKeep, &cairnv1.Counters{KeptRecent: 1}},
		{"deleted, fresh, no window", CleanupCopy{Version: 5, Cached: fresh}, nil, 0, false, none, CleanupRemove, &cairnv1.Counters{Deleted: 1}},
		{"old version", CleanupCopy{Version: 4, Cached: old}, file, 0, true, win, CleanupRemove, &cairnv1.Counters{StaleVersion: 1}},
		{"old version, fresh", CleanupCopy{Version: 4, Cached: fresh}, file, 0, true, win, CleanupKeep, &cairnv1.Counters{KeptRecent: 1}},
		{"misplaced, old: ask", CleanupCopy{Version: 5, Cached: old}, file, 0, false, win, CleanupAskOwners, nil},
		{"misplaced, fresh", CleanupCopy{Version: 5, Cached: fresh}, file, 0, false, win, CleanupKeep, &cairnv1.Counters{KeptRecent: 1}},
		{"misplaced, fresh, force: still kept", CleanupCopy{Version: 5, Cached: fresh}, file, 0, false, CleanupScope{Force: true, Window: time.Hour, Now: now}, CleanupKeep, &cairnv1.Counters{KeptRecent: 1}},
		{"misplaced, fresh, no window: ask", CleanupCopy{Version: 5, Cached: fresh}, file, 0, false, none, CleanupAskOwners, nil},
		{"cached after the task started: kept even without a window", CleanupCopy{Version: 5, Cached: now.Add(time.Second)}, nil, 0, false, none, CleanupKeep, &cairnv1.Counters{KeptRecent: 1}},
		{"exactly at the window's edge: out", CleanupCopy{Version: 5, Cached: now.Add(-2 * time.Hour)}, nil, 0, false, win, CleanupRemove, &cairnv1.Counters{Deleted: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			step, count := CleanupTriage(tc.c, tc.f, tc.pending, tc.owned, tc.s)
			if step != tc.step || Format(orZero(count)) != Format(orZero(tc.count)) {
				t.Fatalf("got step %d counting %s, want step %d counting %s", step, Format(orZero(count)), tc.step, Format(orZero(tc.count)))
			}
		})
	}
}

func orZero(c *cairnv1.Counters) *cairnv1.Counters {
	if c == nil {
		return &cairnv1.Counters{}
	}
	return c
}

func TestCleanupVerdict(t *testing.T) {
	t.Parallel()
	plain := CleanupScope{Window: time.Hour}
	force := CleanupScope{Force: true, Window: time.Hour}
	for _, tc := range []struct {
		name      string
		answers   []OwnerAnswer
		persisted bool
		s         CleanupScope
		step      CleanupStep
		count     *cairnv1.Counters
	}{
		{"an owner holds it", []OwnerAnswer{OwnerLacks, OwnerSame}, false, plain, CleanupRemove, &cairnv1.Counters{}},
		{"owner unreachable", []OwnerAnswer{OwnerUnreachable}, true, plain, CleanupKeep, &cairnv1.Counters{KeptUnverified: 1}},
		{"force, persisted, owner unreachable: kept", []OwnerAnswer{OwnerUnreachable}, true, force, CleanupKeep, &cairnv1.Counters{KeptUnverified: 1}},
		{"force, persisted, owner lacks it: kept", []OwnerAnswer{OwnerLacks}, true, force, CleanupKeep, &cairnv1.Counters{KeptPeerMissing: 1}},
		{"force, persisted, no other owner: kept", nil, true, force, CleanupKeep, &cairnv1.Counters{KeptPeerMissing: 1}},
		{"force, persisted, diverged: goes", []OwnerAnswer{OwnerDiverged}, true, force, CleanupRemove, &cairnv1.Counters{Forced: 1}},
		{"force, persisted, one unreachable one diverged: goes", []OwnerAnswer{OwnerUnreachable, OwnerDiverged}, true, force, CleanupRemove, &cairnv1.Counters{Forced: 1}},
		{"force, unpersisted, diverged: kept", []OwnerAnswer{OwnerDiverged}, false, force, CleanupKeep, &cairnv1.Counters{KeptDiverged: 1}},
		{"diverged without force", []OwnerAnswer{OwnerDiverged}, true, plain, CleanupKeep, &cairnv1.Counters{KeptDiverged: 1}},
		{"missing beats nothing", []OwnerAnswer{OwnerLacks, OwnerLacks}, false, plain, CleanupKeep, &cairnv1.Counters{KeptPeerMissing: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			step, count := CleanupVerdict(tc.answers, tc.persisted, tc.s)
			if step != tc.step || Format(orZero(count)) != Format(orZero(tc.count)) {
				t.Fatalf("got step %d counting %s, want step %d counting %s", step, Format(orZero(count)), tc.step, Format(orZero(tc.count)))
			}
		})
	}
}

func TestPersisted(t *testing.T) {
	t.Parallel()
	p := &cairnv1.File{PersistenceState: cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED}
	for _, tc := range []struct {
		name string
		f    *cairnv1.File
		c    CleanupCopy
		want bool
	}{
		{"persisted", p, CleanupCopy{}, true},
		{"the copy says unpersisted", p, CleanupCopy{Unpersisted: true}, false},
		{"not persisted", &cairnv1.File{PersistenceState: cairnv1.PersistenceState_PERSISTENCE_STATE_NOT_PERSISTED}, CleanupCopy{}, false},
		{"no file", nil, CleanupCopy{}, false},
	} {
		if got := Persisted(tc.f, tc.c); got != tc.want {
			t.Errorf("%s: got %t", tc.name, got)
		}
	}
}
