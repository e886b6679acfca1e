package persistence

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// ErrBadMapping is wrapped by every error ParseMapping returns.
var ErrBadMapping = errors.New("bad async upload mapping")

// ParseMapping reads the seed's async upload mapping file:
//
//	{
//	  "cacheOnlyMountPoint": "/cache-only",
//	  "asyncUploadPathMapping": {"/cache-only/ckpt": "/archive/ckpt"},
//	  "blackList": [".tmp", "_SUCCESS"]
//	}
//
// Keys of asyncUploadPathMapping are cache-only sub-paths (under the mount
// point); values are UFS paths under the UFS root. blackList holds file-name
// patterns, not regular expressions, matched as BlackListMatch says: a
// plain pattern excludes every name that contains it. An unknown key, a repeated key, a sub-path outside the mount point, a path
// that is not clean or climbs out with "..", a bad pattern and invalid JSON
// are refused with the line and the reason. The result lists mappings in
// path order.
func ParseMapping(data []byte) (*cairnv1.UploadMapping, error) {
	line := func(off int64) int { return 1 + bytes.Count(data[:min(int(off), len(data))], []byte("\n")) }
	dec := json.NewDecoder(bytes.NewReader(data))
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: line %d: %s", ErrBadMapping, line(dec.InputOffset()), fmt.Sprintf(format, args...))
	}
	syntax := func(err error) error {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf("%w: line %d: invalid JSON: %v", ErrBadMapping, line(se.Offset), se)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: line %d: invalid JSON: the file ends early", ErrBadMapping, line(int64(len(data))))
		}
		return fmt.Errorf("%w: line %d: %v", ErrBadMapping, line(dec.InputOffset()), err)
	}
	delim := func(want json.Delim) error {
		tok, err := dec.Token()
		if err != nil {
			return syntax(err)
		}
		if d, ok := tok.(json.Delim); !ok || d != want {
			return fail("expected %q, found %v", string(want), tok)
		}
		return nil
	}
	str := func(what string) (string, error) {
		tok, err := dec.Token()
		if err != nil {
			return "", syntax(err)
		}
		s, ok := tok.(string)
		if !ok {
			return "", fail("%s must be a string, found %v", what, tok)
		}
		return s, nil
	}
	m := &cairnv1.UploadMapping{}
	if err := delim('{'); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	cachePaths := map[string]bool{}
	for dec.More() {
		key, err := str("a key")
		if err != nil {
			return nil, err
		}
		if seen[key] {
			return nil, fail("key %q appears twice", key)
		}
		seen[key] = true
		switch key {
		case "cacheOnlyMountPoint":
			v, err := str(key)
			if err != nil {
				return nil, err
			}
			c, err := CleanPath(v)
			if err != nil || c == "/" || c != v {
				return nil, fail("cacheOnlyMountPoint %q: want a clean absolute folder below /, such as /cache-only", v)
			}
			m.CacheOnlyMountPoint = c
		case "asyncUploadPathMapping":
			if err := delim('{'); err != nil {
				return nil, err
			}
			for dec.More() {
				from, err := str("a cache-only sub-path")
				if err != nil {
					return nil, err
				}
				to, err := str(fmt.Sprintf("the UFS path of %q", from))
				if err != nil {
					return nil, err
				}
				cf, err := CleanPath(from)
				if err != nil || cf != from {
					return nil, fail("cache-only sub-path %q: want a clean absolute path (%v)", from, err)
				}
				if cachePaths[cf] {
					return nil, fail("cache-only sub-path %q is mapped twice", from)
				}
				cachePaths[cf] = true
				ct, err := CleanPath(to)
				if err != nil || ct != to {
					return nil, fail("UFS path %q of %q: want a clean absolute path inside the UFS root (%v)", to, from, err)
				}
				m.Mappings = append(m.Mappings, &cairnv1.PathMapping{CachePath: cf, UfsPath: ct})
			}
			if err := delim('}'); err != nil {
				return nil, err
			}
		case "blackList":
			if err := delim('['); err != nil {
				return nil, err
			}
			for dec.More() {
				p, err := str("a blackList pattern")
				if err != nil {
					return nil, err
				}
				if err := checkBlackListPattern(p); err != nil {
					return nil, fail("blackList pattern %q: %v", p, err)
				}
				m.BlackList = append(m.BlackList, p)
			}
			if err := delim(']'); err != nil {
				return nil, err
			}
		default:
			return nil, fail("unknown key %q (known: cacheOnlyMountPoint, asyncUploadPathMapping, blackList)", key)
		}
	}
	if err := delim('}'); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fail("data after the closing brace")
	}
	if m.GetCacheOnlyMountPoint() == "" {
		return nil, fmt.Errorf("%w: cacheOnlyMountPoint is missing", ErrBadMapping)
	}
	for _, pm := range m.GetMappings() {
		if !Under(pm.GetCachePath(), m.GetCacheOnlyMountPoint()) {
			return nil, fmt.Errorf("%w: cache-only sub-path %s is outside the mount point %s", ErrBadMapping, pm.GetCachePath(), m.GetCacheOnlyMountPoint())
		}
	}
	sort.Slice(m.Mappings, func(i, j int) bool { return m.Mappings[i].GetCachePath() < m.Mappings[j].GetCachePath() })
	return m, nil
}

// UploadTarget returns where a file completed at path goes in the UFS under
// the mapping, and whether it goes there at all: the longest mapped
// sub-path that holds path decides, and a file whose name matches the
// blacklist goes nowhere.
func UploadTarget(m *cairnv1.UploadMapping, p string) (string, bool) {
	var best *cairnv1.PathMapping
	for _, pm := range m.GetMappings() {
		if Under(p, pm.GetCachePath()) && (best == nil || len(pm.GetCachePath()) > len(best.GetCachePath())) {
			best = pm
		}
	}
	if best == nil || Blacklisted(m, p) {
		return "", false
	}
	return path.Join(best.GetUfsPath(), strings.TrimPrefix(p, best.GetCachePath())), true
}

// Blacklisted reports whether the file name of p (its last element)
// matches a blacklist pattern (BlackListMatch).
func Blacklisted(m *cairnv1.UploadMapping, p string) bool {
	name := path.Base(p)
	for _, pat := range m.GetBlackList() {
		if BlackListMatch(pat, name) {
			return true
		}
	}
	return false
}

// globChars are the characters that make a blacklist pattern a glob.
const globChars = "*?["

// BlackListMatch reports whether the file name matches the blacklist
// pattern pat. A plain pattern — one without any of *, ? and [ — matches
// every name that contains it, as the seed's "simple filename pattern"
// has it: ".tmp" matches "scratch.tmp", "x.tmp.1" and ".tmp". A pattern
// with one of them is a glob in path.Match syntax that must match the
// whole name: "*.tmp" matches "scratch.tmp" but not "x.tmp.1". A glob
// that path.Match refuses matches nothing (ParseMapping refuses it first).
func BlackListMatch(pat, name string) bool {
	if !strings.ContainsAny(pat, globChars) {
		return pat != "" && strings.Contains(name, pat)
	}
	ok, err := path.Match(pat, name)
	return ok && err == nil
}

// checkBlackListPattern says why pat cannot be a blacklist pattern, if it
// cannot: it is empty, holds a "/" (patterns are for file names, not
// paths), or is a glob path.Match refuses.
func checkBlackListPattern(pat string) error {
	if pat == "" || strings.Contains(pat, "/") {
		return errors.New("want a file-name pattern such as .tmp or *.tmp (no /)")
	}
	if strings.ContainsAny(pat, globChars) {
		if _, err := path.Match(pat, ""); err != nil {
			return fmt.Errorf("a pattern with *, ? or [ is a glob: %w", err)
		}
	}
	return nil
}
