package persistence

import (
	"errors"
	"path"
	"strings"
	"testing"
)

func TestParseMapping(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in, err string
	}{
		{"good", `{
  "cacheOnlyMountPoint": "/cache-only",
  "asyncUploadPathMapping": {"/cache-only/ckpt": "/archive/ckpt", "/cache-only": "/all"},
  "blackList": ["*.tmp", "_SUCCESS"]
}`, ""},
		{"unknown key", "{\n  \"cacheOnlyMountPoint\": \"/c\",\n  \"blacklist\": []\n}", `line 3: unknown key "blacklist"`},
		{"outside the mount point", `{"cacheOnlyMountPoint": "/c", "asyncUploadPathMapping": {"/other/x": "/u"}}`, "outside the mount point"},
		{"escapes the root", "{\"cacheOnlyMountPoint\": \"/c\",\n\"asyncUploadPathMapping\": {\"/c/x\": \"/../etc\"}}", "line 2: UFS path \"/../etc\""},
		{"duplicate key", "{\"cacheOnlyMountPoint\": \"/c\",\n\"asyncUploadPathMapping\": {\"/c/x\": \"/u\",\n\"/c/x\": \"/v\"}}", `line 3: cache-only sub-path "/c/x" is mapped twice`},
		{"duplicate top-level key", `{"cacheOnlyMountPoint": "/c", "cacheOnlyMountPoint": "/d"}`, "appears twice"},
		{"invalid JSON", "{\n\"cacheOnlyMountPoint\": \"/c\",,\n}", "line 2: invalid JSON"},
		{"truncated", `{"cacheOnlyMountPoint": "/c"`, "ends early"},
		{"regex, not a pattern", `{"cacheOnlyMountPoint": "/c", "blackList": ["[a-"]}`, "blackList pattern"},
		{"a path in the blacklist", `{"cacheOnlyMountPoint": "/c", "blackList": ["a/b"]}`, "no /"},
		{"no mount point", `{"blackList": []}`, "cacheOnlyMountPoint is missing"},
		{"root as mount point", `{"cacheOnlyMountPoint": "/"}`, "below /"},
		{"trailing data", `{"cacheOnlyMountPoint": "/c"} {}`, "after the closing brace"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m, err := ParseMapping([]byte(c.in))
			if c.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if len(m.GetMappings()) != 2 || m.GetMappings()[0].GetCachePath() != "/cache-only" {
					t.Fatalf("mappings not in path order: %v", m.GetMappings())
				}
				return
			}
			if err == nil || !errors.Is(err, ErrBadMapping) || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("got %v, want an error containing %q", err, c.err)
			}
		})
	}
}

func TestUploadTarget(t *testing.T) {
	t.Parallel()
	m, err := ParseMapping([]byte(`{"cacheOnlyMountPoint": "/c",
		"asyncUploadPathMapping": {"/c/ckpt": "/archive/ckpt", "/c/ckpt/fast": "/fast", "/c": "/all"},
		"blackList": ["*.tmp", "_SUCCESS", ".crc"]}`))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"/c/ckpt/step-1", "/archive/ckpt/step-1", true},
		{"/c/ckpt/fast/x", "/fast/x", true},
		{"/c/ckptx/y", "/all/ckptx/y", true},
		{"/c/ckpt/a.tmp", "", false},
		{"/c/job/_SUCCESS", "", false},
		{"/c/job/x.tmp.1", "/all/job/x.tmp.1", true}, // a glob matches the whole name
		{"/c/x.crc/data", "/all/x.crc/data", true},   // only the name counts, not a folder
		{"/c/part-7.crc", "", false},
		{"/elsewhere/f", "", false},
	}
	for _, c := range cases {
		if got, ok := UploadTarget(m, c.in); got != c.want || ok != c.ok {
			t.Errorf("UploadTarget(%s) = %q %v, want %q %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestBlackListMatch(t *testing.T) {
	t.Parallel()
	cases := []struct {
		pat, name string
		want      bool
	}{
		// The seed's example: a plain pattern excludes every name holding it.
		{".tmp", "scratch.tmp", true},
		{".tmp", "x.tmp.1", true},
		{".tmp", ".tmp", true},
		{".tmp", "tmp", false},
		{".tmp", "scratch.TMP", false}, // case counts
		{".tmp", "scratchtmp", false},
		{"_SUCCESS", "_SUCCESS", true},
		{"_SUCCESS", "job_SUCCESS.marker", true},
		{`a\b`, `xa\by`, true}, // a backslash is literal in a plain pattern
		{"", "anything", false},
		// *, ? or [ make a glob, which must match the whole name.
		{"*.tmp", "scratch.tmp", true},
		{"*.tmp", "x.tmp.1", false},
		{"part-?", "part-1", true},
		{"part-?", "part-12", false},
		{"[ab].log", "a.log", true},
		{"[ab].log", "c.log", false},
		{`\*.tmp`, "*.tmp", true}, // a backslash escapes in a glob
		{`\*.tmp`, "x.tmp", false},
		{"[a-", "[a-", false}, // a bad glob matches nothing
	}
	for _, c := range cases {
		if got := BlackListMatch(c.pat, c.name); got != c.want {
			t.Errorf("BlackListMatch(%q, %q) = %v, want %v", c.pat, c.name, got, c.want)
		}
	}
}

// FuzzBlackListMatch: a plain pattern matches exactly the names that hold
// it, wherever it sits in them; a glob agrees with path.Match; a pattern
// ParseMapping takes never breaks the matcher.
func FuzzBlackListMatch(f *testing.F) {
	f.Add(".tmp", "scratch", ".1")
	f.Add("*.tmp", "x", "")
	f.Add("_SUCCESS", "", "")
	f.Add("[a-", "a", "b")
	f.Fuzz(func(t *testing.T, pat, before, after string) {
		name := before + pat + after
		if !strings.ContainsAny(pat, "*?[") {
			if pat != "" && !BlackListMatch(pat, name) {
				t.Fatalf("plain %q does not match %q, which holds it", pat, name)
			}
			if got := BlackListMatch(pat, before+after); got != (pat != "" && strings.Contains(before+after, pat)) {
				t.Fatalf("plain %q on %q: %v", pat, before+after, got)
			}
			return
		}
		want, err := path.Match(pat, name)
		if got := BlackListMatch(pat, name); got != (want && err == nil) {
			t.Fatalf("glob %q on %q: %v, path.Match says %v %v", pat, name, got, want, err)
		}
		if checkBlackListPattern(pat) == nil && strings.Contains(pat, "/") {
			t.Fatalf("a pattern with / was taken: %q", pat)
		}
	})
}

func FuzzParseMapping(f *testing.F) {
	f.Add([]byte(`{"cacheOnlyMountPoint": "/c", "asyncUploadPathMapping": {"/c/x": "/u"}, "blackList": ["*.tmp"]}`))
	f.Add([]byte(`{"cacheOnlyMountPoint": "/c", "asyncUploadPathMapping": {"/c/x": "/../u"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMapping(data)
		if err != nil {
			return
		}
		for _, pm := range m.GetMappings() {
			if !Under(pm.GetCachePath(), m.GetCacheOnlyMountPoint()) {
				t.Fatalf("%s is outside %s", pm.GetCachePath(), m.GetCacheOnlyMountPoint())
			}
			if c, err := CleanPath(pm.GetUfsPath()); err != nil || c != pm.GetUfsPath() {
				t.Fatalf("UFS path %q accepted: %v", pm.GetUfsPath(), err)
			}
		}
	})
}
