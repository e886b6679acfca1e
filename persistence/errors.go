package persistence

import (
	"context"
	"errors"
	"fmt"
)

// What went wrong with a store, as far as a caller can act on it. A
// StoreError wraps one of them (or none, when the store failed otherwise).
var (
	// ErrUnreachable: no answer (refused, reset, timed out), retries spent.
	ErrUnreachable = errors.New("the store cannot be reached")
	// ErrThrottled: the store kept asking to slow down (503 SlowDown),
	// retries spent.
	ErrThrottled = errors.New("the store is throttling requests")
	// ErrDenied: the store refused this process's credentials, or it has
	// none (they come from the AWS environment variables or shared
	// credentials file of each process that touches the store).
	ErrDenied = errors.New("the store refused this process's credentials")
	// ErrNoBucket: the mount's bucket does not exist.
	ErrNoBucket = errors.New("the bucket does not exist")
	// ErrChanged: the object changed while it was being read.
	ErrChanged = errors.New("the object changed while it was read")
)

// StoreError is a failed request to the store behind a mount. Its message
// names the mount, the operation and the path, so that the person who
// sees it knows which store to look at.
type StoreError struct {
	// Mount names the mount: "/s3 (s3://bucket/prefix)".
	Mount string
	// Op is what was asked ("open", "upload part 3 of", "list", ...).
	Op string
	// Path is the path inside the mount.
	Path string
	// Kind is one of the errors above, ErrNotFound, or nil.
	Kind error
	// Err is the store's own error.
	Err error
}

func (e *StoreError) Error() string {
	what := "failed"
	if e.Kind != nil {
		what = e.Kind.Error()
	}
	return fmt.Sprintf("UFS %s: %s %s: %s: %v", e.Mount, e.Op, e.Path, what, e.Err)
}

func (e *StoreError) Unwrap() []error {
	if e.Kind == nil {
		return []error{e.Err}
	}
	return []error{e.Kind, e.Err}
}

// Kind names the kind of a UFS error for metrics labels: not_found,
// invalid_path, unreachable, throttled, denied, no_bucket, changed,
// canceled, or other.
func Kind(err error) string {
	switch {
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrInvalidPath):
		return "invalid_path"
	case errors.Is(err, ErrUnreachable):
		return "unreachable"
	case errors.Is(err, ErrThrottled):
		return "throttled"
	case errors.Is(err, ErrDenied):
		return "denied"
	case errors.Is(err, ErrNoBucket):
		return "no_bucket"
	case errors.Is(err, ErrChanged):
		return "changed"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "other"
}
