package fsm

import (
	"strings"
	"testing"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

func mount(p, uri string, opts map[string]string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_UfsMounted{UfsMounted: &cairnv1.UfsMounted{Path: p, Uri: uri, Options: opts}}}
}

func unmount(p string) *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_UfsUnmounted{UfsUnmounted: &cairnv1.UfsUnmounted{Path: p}}}
}

func TestMounts(t *testing.T) {
	t.Parallel()
	m := open(t)
	idx := uint64(0)
	apply := func(ev *cairnv1.Event) Result {
		t.Helper()
		idx++
		ev.Time = at(int(idx))
		// What the leader's check says must be what applying does.
		var pre Result
		var err error
		switch k := ev.GetKind().(type) {
		case *cairnv1.Event_UfsMounted:
			pre, err = m.CheckMount(k.UfsMounted)
		case *cairnv1.Event_UfsUnmounted:
			pre, err = m.CheckUnmount(k.UfsUnmounted.GetPath())
		}
		if err != nil {
			t.Fatal(err)
		}
		r := m.Apply([]Entry{{Index: idx, Events: []*cairnv1.Event{ev}}})[0][0]
		if ev.GetUfsMounted() != nil || ev.GetUfsUnmounted() != nil {
			if pre.Code != r.Code || pre.Message != r.Message || pre.Repeat != r.Repeat || pre.Value != r.Value {
				t.Fatalf("the check said %v %q repeat=%v value=%d, the apply %v %q repeat=%v value=%d",
					pre.Code, pre.Message, pre.Repeat, pre.Value, r.Code, r.Message, r.Repeat, r.Value)
			}
		}
		return r
	}
	write := func(p string, wt cairnv1.WriteType) {
		t.Helper()
		r := apply(&cairnv1.Event{Kind: &cairnv1.Event_FileCreated{FileCreated: &cairnv1.FileCreated{Path: p, WriteType: wt}}})
		if r.Code != OK {
			t.Fatalf("create %s: %s", p, r.Message)
		}
		if r := apply(fileComplete(p, r.Value, 10, nil)); r.Code != OK {
			t.Fatalf("complete %s: %s", p, r.Message)
		}
	}
	s3opts := map[string]string{"endpoint": "http://127.0.0.1:9000/", "path_style": "1"}
	root := &cairnv1.Event{Kind: &cairnv1.Event_UfsMounted{UfsMounted: &cairnv1.UfsMounted{Path: "/", Uri: "file:///srv/m1/ufs", UfsRoot: "/srv/m1/ufs", FromFlag: true}}}
	cacheOnly := &cairnv1.Event{Kind: &cairnv1.Event_UfsMounted{UfsMounted: &cairnv1.UfsMounted{Path: "/cache-only", CacheOnly: true}}}
	steps := []struct {
		name  string
		do    func() *cairnv1.Event
		code  Code
		msg   string
		value uint64
	}{
		{"the flag's root", func() *cairnv1.Event { return root }, OK, "", 0},
		{"the cache-only mount", func() *cairnv1.Event { return cacheOnly }, OK, "", 0},
		{"files under /data", func() *cairnv1.Event { write("/data/x", cairnv1.WriteType_WRITE_TYPE_MUST_CACHE); return nil }, OK, "", 0},
		{"an s3 mount", func() *cairnv1.Event { return mount("/s3", "s3://bkt/p/", s3opts) }, OK, "", 0},
		{"the same again", func() *cairnv1.Event { return mount("/s3", "s3://bkt/p", s3opts) }, OK, "", 0},
		{"an unknown scheme", func() *cairnv1.Event { return mount("/gs", "gs://bkt", nil) }, InvalidArgument, `unknown URI scheme "gs"`, 0},
		{"a credential as an option", func() *cairnv1.Event {
			return mount("/s4", "s3://bkt", map[string]string{"secret_access_key": "x"})
		}, InvalidArgument, "unknown option", 0},
		{"a mount over cairn's files", func() *cairnv1.Event { return mount("/data", "s3://bkt/data", nil) }, FailedPrecondition, "cairn has files under it (/data/x)", 0},
		{"a mount over one file", func() *cairnv1.Event { return mount("/data/x", "s3://bkt/data", nil) }, FailedPrecondition, "(/data/x)", 0},
		{"a mount inside the cache-only mount", func() *cairnv1.Event { return mount("/cache-only/ckpt", "s3://bkt/ckpt", nil) }, FailedPrecondition, "inside the cache-only mount", 0},
		{"an operator's / over files", func() *cairnv1.Event { return mount("/", "s3://bkt", nil) }, FailedPrecondition, "files under it", 0},
		{"a new leader's --ufs replaces the flag's /", func() *cairnv1.Event {
			return &cairnv1.Event{Kind: &cairnv1.Event_UfsMounted{UfsMounted: &cairnv1.UfsMounted{Path: "/", Uri: "file:///srv/m2/ufs", FromFlag: true}}}
		}, OK, "", 0},
		{"a nested mount", func() *cairnv1.Event { return mount("/s3/deep", "file:///srv/deep", nil) }, OK, "", 0},
		{"files in both", func() *cairnv1.Event {
			write("/s3/a", cairnv1.WriteType_WRITE_TYPE_CACHE_THROUGH)
			write("/s3/deep/f", cairnv1.WriteType_WRITE_TYPE_MUST_CACHE)
			write("/s3/b", cairnv1.WriteType_WRITE_TYPE_ASYNC_THROUGH)
			return nil
		}, OK, "", 0},
		{"unmount with a file not yet uploaded", func() *cairnv1.Event { return unmount("/s3") }, FailedPrecondition, "/s3/b is PERSISTENCE_STATE_TO_BE_PERSISTED", 0},
		{"delete it", func() *cairnv1.Event { return fileDelete("/s3/b", false) }, OK, "", 1},
		{"unmount while its UFS copy waits for removal", func() *cairnv1.Event { return unmount("/s3") }, FailedPrecondition, "waits for removal", 0},
		{"the copy is removed", func() *cairnv1.Event {
			return &cairnv1.Event{Kind: &cairnv1.Event_UfsCopyRemoved{UfsCopyRemoved: &cairnv1.UfsCopyRemoved{Path: "/s3/b", UfsPath: "/s3/b"}}}
		}, OK, "", 0},
		{"a mapping that sends files under /s3", func() *cairnv1.Event {
			return &cairnv1.Event{Kind: &cairnv1.Event_UploadMappingSet{UploadMappingSet: &cairnv1.UploadMappingSet{Mapping: &cairnv1.UploadMapping{
				CacheOnlyMountPoint: "/cache-only", Mappings: []*cairnv1.PathMapping{{CachePath: "/cache-only/a", UfsPath: "/s3/a-up"}}}}}}
		}, OK, "", 0},
		{"unmount while the mapping sends files to it", func() *cairnv1.Event { return unmount("/s3") }, FailedPrecondition, "change the mapping first", 0},
		{"the mapping goes elsewhere", func() *cairnv1.Event {
			return &cairnv1.Event{Kind: &cairnv1.Event_UploadMappingSet{UploadMappingSet: &cairnv1.UploadMappingSet{Mapping: &cairnv1.UploadMapping{
				CacheOnlyMountPoint: "/cache-only", Mappings: []*cairnv1.PathMapping{{CachePath: "/cache-only/a", UfsPath: "/archive"}}}}}}
		}, OK, "", 0},
		{"unmount: /s3/a is forgotten, /s3/deep/f stays", func() *cairnv1.Event { return unmount("/s3") }, OK, "", 1},
		{"unmount /", func() *cairnv1.Event { return unmount("/") }, FailedPrecondition, "every path needs a UFS", 0},
		{"unmount the cache-only mount", func() *cairnv1.Event { return unmount("/cache-only") }, FailedPrecondition, "--cache-only-mount", 0},
		{"unmount what is not mounted", func() *cairnv1.Event { return unmount("/s3") }, NotFound, "nothing is mounted", 0},
	}
	for _, s := range steps {
		ev := s.do()
		if ev == nil {
			continue
		}
		r := apply(ev)
		if r.Code != s.code || !strings.Contains(r.Message, s.msg) || r.Value != s.value {
			t.Fatalf("%s: %v %q value %d, want %v containing %q, value %d", s.name, r.Code, r.Message, r.Value, s.code, s.msg, s.value)
		}
	}
	table, err := m.Mounts()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mt := range table {
		got = append(got, mt.GetPath()+"="+mt.GetUri())
	}
	if strings.Join(got, " ") != "/=file:///srv/m2/ufs /cache-only= /s3/deep=file:///srv/deep" {
		t.Fatalf("mount table %v", got)
	}
	if _, found, _ := m.File("/s3/a"); found {
		t.Fatal("the unmounted /s3/a is still in the namespace")
	}
	if _, found, _ := m.File("/s3/deep/f"); !found {
		t.Fatal("/s3/deep/f, under another mount, was forgotten")
	}
	if d, _ := m.UfsDeletes(10); len(d) != 0 {
		t.Fatalf("an unmount queued UFS removals: %v", d)
	}
	// Its repeat is a no-op; the canonical URI and options were stored.
	r := apply(mount("/s3", "s3://bkt/p", s3opts))
	table, _ = m.Mounts()
	for _, mt := range table {
		if mt.GetPath() == "/s3" && (mt.GetOptions()["endpoint"] != "http://127.0.0.1:9000" || mt.GetOptions()["path_style"] != "true") {
			t.Fatalf("options are not canonical: %v", mt.GetOptions())
		}
	}
	if r.Code != OK || r.Repeat {
		t.Fatalf("mount again: %+v", r)
	}
	// An operator's / is not replaced by a new leader's flag.
	m2 := open(t)
	idx2 := uint64(0)
	ap2 := func(ev *cairnv1.Event) Result {
		idx2++
		ev.Time = at(int(idx2))
		return m2.Apply([]Entry{{Index: idx2, Events: []*cairnv1.Event{ev}}})[0][0]
	}
	ap2(mount("/", "s3://bkt", nil))
	if r := ap2(&cairnv1.Event{Kind: &cairnv1.Event_UfsMounted{UfsMounted: &cairnv1.UfsMounted{Path: "/", Uri: "file:///srv/ufs", FromFlag: true}}}); r.Code != OK || !r.Repeat {
		t.Fatalf("a flag over an operator's /: %+v", r)
	}
	if table, _ := m2.Mounts(); len(table) != 1 || table[0].GetUri() != "s3://bkt" {
		t.Fatalf("mount table after a flag: %v", table)
	}
	// A file loaded from an object store carries its ETag as its identity.
	ap2(&cairnv1.Event{Kind: &cairnv1.Event_FileLoaded{FileLoaded: &cairnv1.FileLoaded{Path: "/obj", Length: 3, UfsEtag: "abc-2", UfsVersionId: "v7"}}})
	if f, _, _ := m2.File("/obj"); f.GetEtag() != "abc-2" || f.GetUfsEtag() != "abc-2" || f.GetUfsVersionId() != "v7" {
		t.Fatalf("loaded object: %v", f)
	}
}
