package persistence

import (
	"errors"
	"maps"
	"reflect"
	"strings"
	"testing"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

func TestParseURI(t *testing.T) {
	t.Parallel()
	good := []struct {
		uri  string
		opts map[string]string
		want MountSpec
		back string
	}{
		{"file:///srv/ufs", nil, MountSpec{Scheme: "file", Dir: "/srv/ufs"}, "file:///srv/ufs"},
		{"file:///srv/ufs/", nil, MountSpec{Scheme: "file", Dir: "/srv/ufs"}, "file:///srv/ufs"},
		{"file:///with%20space", nil, MountSpec{Scheme: "file", Dir: "/with space"}, "file:///with%20space"},
		{"s3://bucket", nil, MountSpec{Scheme: "s3", Bucket: "bucket", Region: "us-east-1", PartSize: DefaultPartSize, ParallelParts: DefaultParallelParts}, "s3://bucket"},
		{"s3://bucket/", nil, MountSpec{Scheme: "s3", Bucket: "bucket", Region: "us-east-1", PartSize: DefaultPartSize, ParallelParts: DefaultParallelParts}, "s3://bucket"},
		{"s3://my.bucket-1/a/b/", map[string]string{"endpoint": "http://127.0.0.1:9000/", "region": "eu-west-1", "path_style": "1", "part_size_mib": "16", "parallel_parts": "8"},
			MountSpec{Scheme: "s3", Bucket: "my.bucket-1", Prefix: "a/b", Endpoint: "http://127.0.0.1:9000", Region: "eu-west-1", PathStyle: true, PartSize: 16 << 20, ParallelParts: 8},
			"s3://my.bucket-1/a/b"},
	}
	for _, c := range good {
		got, err := ParseURI(c.uri, c.opts)
		if err != nil {
			t.Errorf("ParseURI(%q, %v): %v", c.uri, c.opts, err)
			continue
		}
		opts := got.Options
		got.Options = nil
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseURI(%q) = %+v, want %+v", c.uri, got, c.want)
		}
		if got.URI() != c.back {
			t.Errorf("ParseURI(%q).URI() = %q, want %q", c.uri, got.URI(), c.back)
		}
		if len(opts) != len(c.opts) {
			t.Errorf("ParseURI(%q) kept options %v of %v", c.uri, opts, c.opts)
		}
	}
	if s, _ := ParseURI("s3://b12/p", map[string]string{"path_style": "1", "endpoint": "https://s3.example.com/"}); !maps.Equal(s.Options, map[string]string{"path_style": "true", "endpoint": "https://s3.example.com"}) {
		t.Errorf("options are not canonical: %v", s.Options)
	}
	bad := []struct {
		uri  string
		opts map[string]string
		want string
	}{
		{"", nil, "no scheme"},
		{"/srv/ufs", nil, "no scheme"},
		{"gs://bucket/x", nil, `unknown URI scheme "gs"`},
		{"hdfs://nn/x", nil, `unknown URI scheme "hdfs"`},
		{"file://host/dir", nil, "names host"},
		{"file:relative", nil, "followed by a path"},
		{"file:///", nil, "whole file system"},
		{"file:///a/../b", nil, `".." segment`},
		{"file:///a//b", nil, "empty segment"},
		{"file:///srv", map[string]string{"region": "x"}, "takes no options"},
		{"s3://bucket/a//b", nil, "must be clean"},
		{"s3://bucket/a/./b", nil, "must be clean"},
		{"s3://Bucket/x", nil, "lower-case"},
		{"s3://ab", nil, "3 to 63"},
		{"s3://-bucket", nil, "start and end"},
		{"s3://a..b", nil, "two dots"},
		{"s3://192.168.1.1", nil, "IP address"},
		{"s3://bucket:9000/x", nil, "endpoint="},
		{"s3://key:secret@bucket/x", nil, "no user"},
		{"s3://bucket/x?versionId=1", nil, "no user, query"},
		{"s3://bucket/x#frag", nil, "no user, query"},
		{"s3://bucket", map[string]string{"secret_key": "x"}, `unknown option "secret_key"`},
		{"s3://bucket", map[string]string{"endpoint": "127.0.0.1:9000"}, "option endpoint"},
		{"s3://bucket", map[string]string{"endpoint": "ftp://h"}, "option endpoint"},
		{"s3://bucket", map[string]string{"endpoint": "http://u:p@h"}, "option endpoint"},
		{"s3://bucket", map[string]string{"endpoint": "http://h/path"}, "option endpoint"},
		{"s3://bucket", map[string]string{"region": "EU WEST"}, "option region"},
		{"s3://bucket", map[string]string{"path_style": "maybe"}, "option path_style"},
		{"s3://bucket", map[string]string{"part_size_mib": "4"}, "option part_size_mib"},
		{"s3://bucket", map[string]string{"parallel_parts": "0"}, "option parallel_parts"},
		{"s3://bucket/" + strings.Repeat("a", MaxPathBytes), nil, "limit"},
	}
	for _, c := range bad {
		_, err := ParseURI(c.uri, c.opts)
		if !errors.Is(err, ErrBadMount) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseURI(%q, %v) = %v, want ErrBadMount saying %q", c.uri, c.opts, err, c.want)
		}
	}
}

func TestSpecOf(t *testing.T) {
	t.Parallel()
	// A mount journaled before URIs names only its directory.
	if s, err := SpecOf(&cairnv1.Mount{Path: "/", UfsRoot: "/data/ufs"}); err != nil || s.Scheme != SchemeFile || s.Dir != "/data/ufs" {
		t.Errorf("legacy mount: %+v %v", s, err)
	}
	if _, err := SpecOf(&cairnv1.Mount{Path: "/c", CacheOnly: true}); !errors.Is(err, ErrBadMount) {
		t.Errorf("cache-only mount: %v", err)
	}
	if s, err := SpecOf(&cairnv1.Mount{Path: "/s3", Uri: "s3://b12/p", Options: map[string]string{"path_style": "true"}}); err != nil || !s.PathStyle || s.Prefix != "p" {
		t.Errorf("s3 mount: %+v %v", s, err)
	}
}

// FuzzParseURI: what ParseURI accepts has a canonical URI that parses to
// the same spec (with the same canonical options), a file mount's
// directory is clean and absolute, and an s3 prefix never starts or ends
// with a slash nor holds an empty, "." or ".." segment: no key built under
// it can climb out.
func FuzzParseURI(f *testing.F) {
	f.Add("s3://bucket/prefix", "endpoint", "http://127.0.0.1:9000")
	f.Add("file:///srv/ufs", "", "")
	f.Add("s3://b.b-b/a/b/c/", "path_style", "yes")
	f.Add("file:///%2e%2e/x", "", "")
	f.Add("s3://bucket/%2e%2e", "region", "us-east-1")
	f.Add("s3://bucket", "part_size_mib", "5")
	f.Fuzz(func(t *testing.T, uri, k, v string) {
		var opts map[string]string
		if k != "" {
			opts = map[string]string{k: v}
		}
		s, err := ParseURI(uri, opts)
		if err != nil {
			if !errors.Is(err, ErrBadMount) {
				t.Fatalf("ParseURI(%q) failed without ErrBadMount: %v", uri, err)
			}
			return
		}
		again, err := ParseURI(s.URI(), s.Options)
		if err != nil {
			t.Fatalf("canonical URI %q of %q does not parse: %v", s.URI(), uri, err)
		}
		if again.URI() != s.URI() || !maps.Equal(again.Options, s.Options) {
			t.Fatalf("canonical form is not stable: %q %v, then %q %v", s.URI(), s.Options, again.URI(), again.Options)
		}
		a, b := again, s
		a.Options, b.Options = nil, nil
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%q and its canonical %q parse differently: %+v, %+v", uri, s.URI(), b, a)
		}
		switch s.Scheme {
		case SchemeFile:
			if c, err := CleanPath(s.Dir); err != nil || c != s.Dir || c == "/" {
				t.Fatalf("directory %q of %q is not clean: %v", s.Dir, uri, err)
			}
		case SchemeS3:
			if s.Prefix != "" {
				if c, err := CleanPath("/" + s.Prefix); err != nil || c != "/"+s.Prefix {
					t.Fatalf("prefix %q of %q is not clean: %v", s.Prefix, uri, err)
				}
			}
			if checkBucket(s.Bucket) != nil {
				t.Fatalf("bucket %q of %q breaks the naming rules", s.Bucket, uri)
			}
		default:
			t.Fatalf("scheme %q accepted", s.Scheme)
		}
	})
}
