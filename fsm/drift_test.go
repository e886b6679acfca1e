package fsm

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

func drifted(p string, version uint64, kind cairnv1.UfsDriftKind, mtime *timestamppb.Timestamp, etag string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_UfsCopyDrifted{UfsCopyDrifted: &cairnv1.UfsCopyDrifted{
		Path: p, Version: version, Kind: kind, Detail: "seen by the test", UfsMtime: mtime, UfsEtag: etag}}}
}

func loaded(p string, mtime *timestamppb.Timestamp, etag string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_FileLoaded{FileLoaded: &cairnv1.FileLoaded{Path: p, Length: 10, UfsMtime: mtime, UfsEtag: etag}}}
}

func TestUfsCopyDrifted(t *testing.T) {
	t.Parallel()
	gone, changed := cairnv1.UfsDriftKind_UFS_DRIFT_KIND_GONE, cairnv1.UfsDriftKind_UFS_DRIFT_KIND_CHANGED
	mtime := at(1)
	cases := []struct {
		name    string
		setup   []*cairnv1.Event // /f is loaded (PERSISTED, version 1, mtime at(1), etag "e1") first
		ev      *cairnv1.Event
		code    Code
		applied bool
		state   cairnv1.PersistenceState
		queued  bool
		errHas  string
		drift   string
	}{
		{name: "gone: queued for a new upload", ev: drifted("/f", 1, gone, mtime, "e1"), applied: true,
			state: cairnv1.PersistenceState_PERSISTENCE_STATE_TO_BE_PERSISTED, queued: true, drift: "gone: seen by the test"},
		{name: "changed: held with an error, out of the queue", ev: drifted("/f", 1, changed, mtime, "e1"), applied: true,
			state: cairnv1.PersistenceState_PERSISTENCE_STATE_TO_BE_PERSISTED, errHas: "changed by another writer", drift: "changed: seen by the test"},
		{name: "another version: moot", ev: drifted("/f", 7, gone, mtime, "e1"),
			state: cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED},
		{name: "another recorded mtime (uploaded again since): moot", ev: drifted("/f", 1, gone, at(2), "e1"),
			state: cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED},
		{name: "another recorded ETag: moot", ev: drifted("/f", 1, gone, mtime, "e2"),
			state: cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED},
		{name: "a write of the path in progress: moot", setup: []*cairnv1.Event{fileCreate("/f", true)}, ev: drifted("/f", 1, gone, mtime, "e1"),
			state: cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED},
		{name: "taken back already: moot", setup: []*cairnv1.Event{drifted("/f", 1, gone, mtime, "e1")}, ev: drifted("/f", 1, gone, nil, ""),
			state: cairnv1.PersistenceState_PERSISTENCE_STATE_TO_BE_PERSISTED, queued: true, drift: "gone: seen by the test"},
		{name: "no such file: moot", ev: drifted("/nope", 1, gone, mtime, "e1"),
			state: cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED},
		{name: "no kind: refused", ev: drifted("/f", 1, cairnv1.UfsDriftKind_UFS_DRIFT_KIND_UNSPECIFIED, mtime, "e1"), code: InvalidArgument,
			state: cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m := open(t)
			evs := append([]*cairnv1.Event{loaded("/f", mtime, "e1")}, c.setup...)
			for i, ev := range evs {
				ev.Time = at(10 + i)
				if r := m.Apply([]Entry{{Index: uint64(i + 1), Events: []*cairnv1.Event{ev}}})[0][0]; r.Code != OK {
					t.Fatalf("setup %d: %v", i, r.Message)
				}
			}
			before, _ := m.UfsDrifts()
			c.ev.Time = at(100)
			r := m.Apply([]Entry{{Index: uint64(len(evs) + 1), Events: []*cairnv1.Event{c.ev}}})[0][0]
			if r.Code != c.code {
				t.Fatalf("result %v %q, want %v", r.Code, r.Message, c.code)
			}
			if got := r.Value == 1; got != c.applied {
				t.Errorf("applied = %v, want %v", got, c.applied)
			}
			after, err := m.UfsDrifts()
			if err != nil {
				t.Fatal(err)
			}
			if c.applied != (after == before+1) || (!c.applied && after != before) {
				t.Errorf("drift count %d -> %d, applied %v", before, after, c.applied)
			}
			f, _, err := m.File("/f")
			if err != nil {
				t.Fatal(err)
			}
			if f.GetPersistenceState() != c.state {
				t.Errorf("state %s, want %s", f.GetPersistenceState(), c.state)
			}
			if f.GetUfsDrift() != c.drift {
				t.Errorf("ufs_drift %q, want %q", f.GetUfsDrift(), c.drift)
			}
			if c.drift != "" && (f.GetUfsMtime() != nil || f.GetUfsEtag() != "") {
				t.Errorf("a drifted file keeps its UFS identity: mtime %v etag %q", f.GetUfsMtime(), f.GetUfsEtag())
			}
			if c.applied && !f.GetUfsDriftTime().AsTime().Equal(at(100).AsTime()) {
				t.Errorf("ufs_drift_time %v, want the event's time", f.GetUfsDriftTime())
			}
			if (c.errHas == "") != (f.GetPersistError() == "") || !strings.Contains(f.GetPersistError(), c.errHas) {
				t.Errorf("persist error %q, want one containing %q", f.GetPersistError(), c.errHas)
			}
			q, err := m.UploadQueue("", 10)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(q) == 1; got != c.queued {
				t.Errorf("queued = %v, want %v", got, c.queued)
			}
		})
	}
}

func TestPartialCachingSetting(t *testing.T) {
	t.Parallel()
	m := open(t)
	s, err := m.Settings()
	if err != nil || !s.GetPartialCaching() {
		t.Fatalf("default partial caching %v (%v), want true", s.GetPartialCaching(), err)
	}
	set := func(i int, v string) Result {
		ev := &cairnv1.Event{Time: at(i), Kind: &cairnv1.Event_SettingChanged{SettingChanged: &cairnv1.SettingChanged{Name: SettingPartialCaching, Value: v}}}
		return m.Apply([]Entry{{Index: uint64(i), Events: []*cairnv1.Event{ev}}})[0][0]
	}
	if r := set(1, "maybe"); r.Code != InvalidArgument {
		t.Fatalf("a bad value: %v %q", r.Code, r.Message)
	}
	if r := set(2, "false"); r.Code != OK {
		t.Fatal(r.Message)
	}
	if s, _ := m.Settings(); s.GetPartialCaching() {
		t.Fatal("partial caching still on after cache.partial false")
	}
}
