package persistence

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// ErrBadMount is wrapped by every error about a malformed mount: its URI or
// its options.
var ErrBadMount = errors.New("bad mount")

// Schemes of UFS URIs.
const (
	SchemeFile = "file"
	SchemeS3   = "s3"
)

// Bounds on the S3 upload options.
const (
	// DefaultPartSize is the size of the parts a large upload is cut into.
	DefaultPartSize = 8 << 20
	// MinPartSize and MaxPartSize are S3's own limits on a part.
	MinPartSize = 5 << 20
	MaxPartSize = 5 << 30
	// DefaultParallelParts is how many parts of one upload travel at once.
	DefaultParallelParts = 4
	MaxParallelParts     = 64
)

// s3Options are the options an s3:// mount takes, with what each means
// (for the error that names them).
var s3Options = []string{"endpoint", "region", "path_style", "part_size_mib", "parallel_parts"}

// MountSpec is a parsed, checked UFS URI with its options. It holds no
// credentials: those come from each process's environment.
type MountSpec struct {
	// Scheme is SchemeFile or SchemeS3.
	Scheme string
	// Dir is a file mount's absolute, clean directory.
	Dir string
	// Bucket and Prefix place an s3 mount: the prefix has no leading or
	// trailing slash ("" is the bucket's root).
	Bucket, Prefix string
	// Endpoint is an S3-compatible server's URL (scheme, host, port);
	// empty for AWS itself. Region defaults to us-east-1. PathStyle
	// addresses buckets as endpoint/bucket rather than bucket.endpoint.
	Endpoint, Region string
	PathStyle        bool
	// PartSize and ParallelParts shape large uploads: memory per upload
	// is at most (ParallelParts+1) × PartSize.
	PartSize      int64
	ParallelParts int
	// Options are the options as given, in canonical form (what the
	// journal keeps).
	Options map[string]string
}

// URI is the spec's canonical URI.
func (s MountSpec) URI() string {
	switch s.Scheme {
	case SchemeFile:
		return (&url.URL{Scheme: SchemeFile, Path: s.Dir}).String()
	case SchemeS3:
		u := &url.URL{Scheme: SchemeS3, Host: s.Bucket}
		if s.Prefix != "" {
			u.Path = "/" + s.Prefix
		}
		return u.String()
	}
	return ""
}

// ParseURI checks a UFS URI and its options: file:///DIR (an absolute
// directory, no options) or s3://BUCKET[/PREFIX] (options endpoint,
// region, path_style, part_size_mib, parallel_parts). Anything else, and
// any option it does not know, is refused with ErrBadMount: credentials
// are never options. It does no IO, so the state machine uses it too.
func ParseURI(uri string, options map[string]string) (MountSpec, error) {
	bad := func(format string, args ...any) (MountSpec, error) {
		return MountSpec{}, fmt.Errorf("%w: %s", ErrBadMount, fmt.Sprintf(format, args...))
	}
	if len(uri) > MaxPathBytes {
		return bad("the URI is %d bytes, over the %d-byte limit", len(uri), MaxPathBytes)
	}
	u, err := url.Parse(uri)
	if err != nil {
		return bad("URI %q: %v", uri, err)
	}
	switch {
	case u.Scheme == "":
		return bad("URI %q has no scheme: want file:///DIR or s3://BUCKET/PREFIX", uri)
	case u.Scheme != SchemeFile && u.Scheme != SchemeS3:
		return bad("unknown URI scheme %q in %q: want file:///DIR or s3://BUCKET/PREFIX", u.Scheme, uri)
	case u.Opaque != "":
		return bad("URI %q: want %s:// followed by a path", uri, u.Scheme)
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(uri, "#"):
		return bad("URI %q: no user, query or fragment (credentials come from the environment, options from --option)", uri)
	}
	spec := MountSpec{Scheme: u.Scheme, Options: map[string]string{}}
	if u.Scheme == SchemeFile {
		if u.Host != "" {
			return bad("URI %q names host %q: a file URI is file:///DIR, a directory every master and worker reaches at that path", uri, u.Host)
		}
		dir, err := CleanPath(u.Path)
		if err != nil {
			return bad("URI %q: the directory: %v", uri, err)
		}
		if dir == "/" {
			return bad("URI %q would serve the whole file system: name a directory", uri)
		}
		spec.Dir = dir
		for k := range options {
			return bad("option %q: a file mount takes no options", k)
		}
		return spec, nil
	}
	if u.Port() != "" || strings.Contains(u.Host, ":") {
		return bad("URI %q: the host of an s3 URI is the bucket; give the server with --option endpoint=http://HOST:PORT", uri)
	}
	if err := checkBucket(u.Host); err != nil {
		return bad("URI %q: %v", uri, err)
	}
	spec.Bucket = u.Host
	if p := strings.TrimSuffix(u.Path, "/"); p != "" {
		c, err := CleanPath(p)
		if err != nil || c != p {
			return bad("URI %q: the prefix %q must be clean: no empty, \".\" or \"..\" segments (%v)", uri, p, err)
		}
		spec.Prefix = p[1:]
	}
	spec.Region, spec.PartSize, spec.ParallelParts = "us-east-1", DefaultPartSize, DefaultParallelParts
	for _, k := range sortedKeys(options) {
		v := options[k]
		switch k {
		case "endpoint":
			e, err := url.Parse(v)
			if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" || e.User != nil ||
				(e.Path != "" && e.Path != "/") || e.RawQuery != "" || e.Fragment != "" || strings.Contains(v, "#") {
				return bad("option endpoint=%q: want http(s)://HOST[:PORT]", v)
			}
			spec.Endpoint = e.Scheme + "://" + e.Host
			spec.Options[k] = spec.Endpoint
		case "region":
			if v == "" || len(v) > 64 || strings.IndexFunc(v, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') }) >= 0 {
				return bad("option region=%q: want a region such as us-east-1", v)
			}
			spec.Region = v
			spec.Options[k] = v
		case "path_style":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return bad("option path_style=%q: want true or false", v)
			}
			spec.PathStyle = b
			spec.Options[k] = strconv.FormatBool(b)
		case "part_size_mib":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < MinPartSize>>20 || n > MaxPartSize>>20 {
				return bad("option part_size_mib=%q: want a whole number from %d to %d", v, MinPartSize>>20, MaxPartSize>>20)
			}
			spec.PartSize = n << 20
			spec.Options[k] = strconv.FormatInt(n, 10)
		case "parallel_parts":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > MaxParallelParts {
				return bad("option parallel_parts=%q: want a whole number from 1 to %d", v, MaxParallelParts)
			}
			spec.ParallelParts = n
			spec.Options[k] = strconv.Itoa(n)
		default:
			return bad("unknown option %q for an s3 mount (known: %s; credentials come from the environment, never from options)", k, strings.Join(s3Options, ", "))
		}
	}
	return spec, nil
}

// checkBucket applies S3's bucket naming rules: 3 to 63 characters,
// lower-case letters, digits, dots and hyphens, starting and ending with
// a letter or digit, no two dots in a row, not an IP address.
func checkBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("bucket %q: a bucket name has 3 to 63 characters", b)
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
	for i := 0; i < len(b); i++ {
		if c := b[i]; !alnum(c) && c != '.' && c != '-' {
			return fmt.Errorf("bucket %q: only lower-case letters, digits, dots and hyphens", b)
		}
	}
	if !alnum(b[0]) || !alnum(b[len(b)-1]) || strings.Contains(b, "..") {
		return fmt.Errorf("bucket %q: it must start and end with a letter or digit, without two dots in a row", b)
	}
	if strings.Count(b, ".") == 3 && strings.IndexFunc(b, func(r rune) bool { return r != '.' && (r < '0' || r > '9') }) < 0 {
		return fmt.Errorf("bucket %q: a bucket name is not an IP address", b)
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// SpecOf is the spec of a journaled mount that is not cache-only. A mount
// journaled before mounts had URIs names only its directory (ufs_root).
func SpecOf(m *cairnv1.Mount) (MountSpec, error) {
	if m.GetCacheOnly() {
		return MountSpec{}, fmt.Errorf("%w: %s is a cache-only mount, with no UFS behind it", ErrBadMount, m.GetPath())
	}
	uri := m.GetUri()
	if uri == "" {
		uri = (&url.URL{Scheme: SchemeFile, Path: m.GetUfsRoot()}).String()
	}
	return ParseURI(uri, m.GetOptions())
}

// Describe names a mount for people: "/s3 (s3://bucket/prefix)".
func Describe(m *cairnv1.Mount) string {
	switch {
	case m.GetCacheOnly():
		return m.GetPath() + " (cache-only)"
	case m.GetUri() != "":
		return m.GetPath() + " (" + m.GetUri() + ")"
	}
	return m.GetPath() + " (file://" + m.GetUfsRoot() + ")"
}
