package persistence

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
)

// S3 is a UFS on an S3 bucket, or a prefix of one, through AWS's own SDK
// (aws-sdk-go-v2). A cairn path /a/b under the mount is the object
// PREFIX/a/b. Objects are immutable and S3 has no rename, so a write is
// atomic for readers in S3's own way: the object appears, whole, when its
// single PUT or its multipart upload's completion succeeds, never before;
// an upload that is aborted or abandoned leaves no object (only parts,
// which AbortInterruptedUploads removes).
type S3 struct {
	c        *s3.Client
	bucket   string
	prefix   string // "" or "a/b/"
	label    string // the mount, for errors
	partSize int64
	parallel int
	listPage int32 // objects per listing page (0: the store's default, 1000 on S3)
}

var _ UFS = (*S3)(nil)

// S3Config says how to reach the store besides the spec.
type S3Config struct {
	// Label names the mount in errors: "/s3 (s3://bucket/prefix)".
	Label string
	// OnRetry, if set, is called before every retry of a request.
	OnRetry func()
	// MaxAttempts bounds the tries of one request (default 5): throttling
	// (503 SlowDown), 5xx answers and dropped connections are retried
	// with exponential backoff and jitter.
	MaxAttempts int
}

// NewS3 opens the store of an s3 spec. Credentials come from the
// environment of this process, the way the AWS CLI finds them:
// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN), or the
// shared credentials file (AWS_SHARED_CREDENTIALS_FILE, ~/.aws/credentials;
// AWS_PROFILE picks the profile). The instance metadata service is not
// asked: a process without credentials fails at once instead of waiting
// for a service that is not there. Nothing is sent to the store here.
func NewS3(ctx context.Context, spec MountSpec, cfg S3Config) (*S3, error) {
	if spec.Scheme != SchemeS3 {
		return nil, fmt.Errorf("%w: %s is not an s3 mount", ErrBadMount, spec.URI())
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConnsPerHost = 4 * MaxParallelParts
		tr.ResponseHeaderTimeout = 2 * time.Minute
	}).WithDialerOptions(func(d *net.Dialer) { d.Timeout = 10 * time.Second })
	ac, err := config.LoadDefaultConfig(ctx,
		config.WithRegion(spec.Region),
		config.WithEC2IMDSClientEnableState(imds.ClientDisabled),
		config.WithHTTPClient(hc),
		config.WithLogger(logging.Nop{}),
		config.WithRetryer(func() aws.Retryer {
			std := retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = cfg.MaxAttempts
				o.MaxBackoff = 2 * time.Second
				o.RateLimiter = ratelimit.None // no retry quota: every request gets its retries
			})
			return counted{RetryerV2: std, onRetry: cfg.OnRetry}
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("UFS %s: read the AWS configuration: %w", cfg.Label, err)
	}
	c := s3.NewFromConfig(ac, func(o *s3.Options) {
		if spec.Endpoint != "" {
			o.BaseEndpoint = aws.String(spec.Endpoint)
		}
		o.UsePathStyle = spec.PathStyle
		// cairn checks every byte against its own XXH64; over plain HTTP the
		// payload is signed with its SHA-256 as well.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	s := &S3{c: c, bucket: spec.Bucket, label: cfg.Label, partSize: spec.PartSize, parallel: spec.ParallelParts}
	if spec.Prefix != "" {
		s.prefix = spec.Prefix + "/"
	}
	return s, nil
}

// counted is a retryer that reports each retry.
type counted struct {
	aws.RetryerV2
	onRetry func()
}

func (c counted) RetryDelay(attempt int, err error) (time.Duration, error) {
	if c.onRetry != nil {
		c.onRetry()
	}
	return c.RetryerV2.RetryDelay(attempt, err)
}

// key is the object key of a clean path inside the mount ("/" is the
// prefix itself).
func (s *S3) key(p string) string {
	if p == "/" {
		return s.prefix
	}
	return s.prefix + p[1:]
}

// fail wraps a store error with the mount, what was asked and its kind.
func (s *S3) fail(op, p string, err error) error {
	if err == nil {
		return nil
	}
	return &StoreError{Mount: s.label, Op: op, Path: p, Kind: classify(err), Err: err}
}

// classify tells what kind of failure a store error is.
func classify(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound", "NoSuchVersion":
			return ErrNotFound
		case "NoSuchBucket":
			return ErrNoBucket
		case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "Forbidden", "ExpiredToken",
			"InvalidToken", "TokenRefreshRequired", "AuthorizationHeaderMalformed", "InvalidSecurity", "AccountProblem":
			return ErrDenied
		case "SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests",
			"RequestThrottled", "ProvisionedThroughputExceededException", "ServiceUnavailable":
			return ErrThrottled
		case "PreconditionFailed":
			return ErrChanged
		}
		// Servers that speak S3 name some refusals their own way (versitygw:
		// XAdminUserNotFound for an access key it does not know, with 404).
		if c := ae.ErrorCode(); strings.Contains(c, "AccessKey") || strings.Contains(c, "Signature") || strings.Contains(c, "UserNotFound") {
			return ErrDenied
		}
	}
	var ne net.Error
	if errors.As(err, &ne) || strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "EOF") {
		return ErrUnreachable // no answer at all
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		switch s := re.HTTPStatusCode(); {
		case s == http.StatusNotFound:
			return ErrNotFound
		case s == http.StatusForbidden || s == http.StatusUnauthorized:
			return ErrDenied
		case s == http.StatusServiceUnavailable || s == http.StatusTooManyRequests:
			return ErrThrottled
		case s == http.StatusPreconditionFailed:
			return ErrChanged
		}
		return nil
	}
	if strings.Contains(err.Error(), "credentials") {
		return ErrDenied // no credentials anywhere this process looks
	}
	return nil
}

// rel checks a path for this store.
func (s *S3) rel(p string) (string, error) {
	return CleanPath(p)
}

func etagOf(p *string) string { return strings.Trim(aws.ToString(p), `"`) }

func (s *S3) head(ctx context.Context, p, version string) (Info, error) {
	in := &s3.HeadObjectInput{Bucket: &s.bucket, Key: aws.String(s.key(p))}
	if version != "" {
		in.VersionId = aws.String(version)
	}
	h, err := s.c.HeadObject(ctx, in)
	if err != nil {
		return Info{}, s.fail("stat", p, err)
	}
	return Info{Path: p, Size: aws.ToInt64(h.ContentLength), ModTime: aws.ToTime(h.LastModified),
		ETag: etagOf(h.ETag), VersionID: aws.ToString(h.VersionId)}, nil
}

// Open opens an object for reading: its current version.
func (s *S3) Open(ctx context.Context, path string) (Reader, error) {
	return s.OpenVersion(ctx, path, "")
}

// OpenVersion opens one version of an object (the current one when
// version is ""). Every read of the returned Reader asks for that
// version, or, on a store without versions, for the ETag the object had
// when opened: an object replaced meanwhile fails the read with ErrChanged
// instead of mixing two objects' bytes.
func (s *S3) OpenVersion(ctx context.Context, path, version string) (Reader, error) {
	p, err := s.rel(path)
	if err != nil {
		return nil, err
	}
	if p == "/" {
		return nil, fmt.Errorf("%w: / is the mount's folder, not a file", ErrInvalidPath)
	}
	info, err := s.head(ctx, p, version)
	if err != nil {
		return nil, err
	}
	return &s3Reader{s: s, ctx: ctx, key: s.key(p), info: info}, nil
}

// Create starts an atomic write of path (see s3Writer).
func (s *S3) Create(ctx context.Context, path string) (Writer, error) {
	p, err := s.rel(path)
	if err != nil {
		return nil, err
	}
	if p == "/" {
		return nil, fmt.Errorf("%w: cannot write the mount's folder", ErrInvalidPath)
	}
	return newS3Writer(ctx, s, p), nil
}

// Stat describes an object, or a "folder": a prefix that objects share.
func (s *S3) Stat(ctx context.Context, path string) (Info, error) {
	p, err := s.rel(path)
	if err != nil {
		return Info{}, err
	}
	if p == "/" {
		return Info{Path: p, IsDir: true}, nil
	}
	info, err := s.head(ctx, p, "")
	if !errors.Is(err, ErrNotFound) {
		return info, err
	}
	l, lerr := s.c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: aws.String(s.key(p) + "/"), MaxKeys: aws.Int32(1)})
	if lerr != nil {
		return Info{}, s.fail("stat", p, lerr)
	}
	if len(l.Contents) > 0 {
		return Info{Path: p, IsDir: true}, nil
	}
	return Info{}, fmt.Errorf("%w: %s", ErrNotFound, p)
}

// Walk calls fn for every object under dir, in key order, a page of the
// listing at a time. Keys that are no cairn path ("a//b", "dir/") are
// skipped.
func (s *S3) Walk(ctx context.Context, dir string, fn func(Info) error) error {
	d, err := s.rel(dir)
	if err != nil {
		return err
	}
	prefix := s.prefix
	if d != "/" {
		prefix = s.key(d) + "/"
	}
	in := &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &prefix}
	if s.listPage > 0 {
		in.MaxKeys = aws.Int32(s.listPage)
	}
	pages := s3.NewListObjectsV2Paginator(s.c, in)
	seen := false
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return s.fail("list", d, err)
		}
		for _, o := range page.Contents {
			seen = true
			p := "/" + strings.TrimPrefix(aws.ToString(o.Key), s.prefix)
			if c, err := CleanPath(p); err != nil || c != p {
				continue
			}
			if err := fn(Info{Path: p, Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified), ETag: etagOf(o.ETag)}); err != nil {
				return err
			}
		}
	}
	if !seen && d != "/" {
		return fmt.Errorf("%w: %s", ErrNotFound, d)
	}
	return nil
}

// Delete removes an object (on a versioned bucket: puts a delete marker
// over it). A missing object is ErrNotFound.
func (s *S3) Delete(ctx context.Context, path string) error {
	p, err := s.rel(path)
	if err != nil {
		return err
	}
	if p == "/" {
		return fmt.Errorf("%w: / is the mount's folder", ErrInvalidPath)
	}
	if _, err := s.head(ctx, p, ""); err != nil {
		return err
	}
	_, err = s.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: aws.String(s.key(p))})
	return s.fail("delete", p, err)
}

// Probe checks that the store answers, knows the bucket and accepts this
// process's credentials for listing under the prefix. It lists rather than
// asks for the bucket with HEAD: a HEAD answer has no body to say what is
// wrong, and some servers answer an unknown key's HEAD with 404.
func (s *S3) Probe(ctx context.Context) error {
	_, err := s.c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: aws.String(s.prefix), MaxKeys: aws.Int32(1)})
	return s.fail("list", "/", err)
}

// AbortInterruptedUploads aborts the multipart uploads under the prefix
// that started more than olderThan ago: uploads whose writer died (a
// worker killed mid-upload). Their parts hold space but were never an
// object. It returns how many it aborted.
func (s *S3) AbortInterruptedUploads(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := time.Now().Add(-olderThan)
	n := 0
	in := &s3.ListMultipartUploadsInput{Bucket: &s.bucket, Prefix: aws.String(s.prefix)}
	for {
		out, err := s.c.ListMultipartUploads(ctx, in)
		if err != nil {
			return n, s.fail("list the uploads under", "/", err)
		}
		for _, u := range out.Uploads {
			if u.Initiated == nil || u.Initiated.After(cutoff) {
				continue
			}
			if _, err := s.c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: u.Key, UploadId: u.UploadId}); err != nil {
				var nu *types.NoSuchUpload
				if !errors.As(err, &nu) {
					return n, s.fail("abort an interrupted upload of", "/"+strings.TrimPrefix(aws.ToString(u.Key), s.prefix), err)
				}
			}
			n++
		}
		if !aws.ToBool(out.IsTruncated) {
			return n, nil
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}
