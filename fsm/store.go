package fsm

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"
)

// marshal encodes a message deterministically: equal messages give equal
// bytes on every replica.
func marshal(msg proto.Message) []byte {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		// Only invalid UTF-8 in a string field can fail here, and every
		// string the state machine stores came through proto decoding,
		// which already rejected it.
		panic(fmt.Sprintf("fsm: marshal %T: %v", msg, err))
	}
	return b
}

// getRaw returns a copy of the value at key, or nil when absent.
func getRaw(r pebble.Reader, key []byte) ([]byte, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get %q: %w", key, err)
	}
	out := append([]byte(nil), v...)
	return out, closer.Close()
}

// getProto decodes the value at key into msg and reports whether it existed.
func getProto(r pebble.Reader, key []byte, msg proto.Message) (bool, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("get %q: %w", key, err)
	}
	defer closer.Close()
	if err := proto.Unmarshal(v, msg); err != nil {
		return false, fmt.Errorf("decode %q: %w", key, err)
	}
	return true, nil
}

// scan calls fn for each key with the prefix, in key order, until fn
// returns false. Key and value are only valid during the call.
func scan(r pebble.Reader, prefix []byte, fn func(k, v []byte) (bool, error)) error {
	return scanFrom(r, prefix, prefixEnd(prefix), fn)
}

// scanFrom is scan over the keys in [lower, upper).
func scanFrom(r pebble.Reader, lower, upper []byte, fn func(k, v []byte) (bool, error)) error {
	prefix := lower
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("iterate %q: %w", prefix, err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return fmt.Errorf("iterate %q: %w", prefix, err)
		}
		more, err := fn(it.Key(), v)
		if err != nil || !more {
			it.Close()
			return err
		}
	}
	if err := it.Error(); err != nil {
		it.Close()
		return fmt.Errorf("iterate %q: %w", prefix, err)
	}
	return it.Close()
}

// scanProto decodes each value under prefix into a fresh message from
// newMsg and passes it to fn, in key order.
func scanProto[M proto.Message](r pebble.Reader, prefix []byte, newMsg func() M, fn func(M) bool) error {
	return scan(r, prefix, func(k, v []byte) (bool, error) {
		msg := newMsg()
		if err := proto.Unmarshal(v, msg); err != nil {
			return false, fmt.Errorf("decode %q: %w", k, err)
		}
		return fn(msg), nil
	})
}

// pebbleLogger routes pebble's own log lines to slog at debug level (errors
// at error level) so that they do not flood an operator's terminal.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...), "component", "pebble")
	panic(fmt.Sprintf("pebble: "+format, args...))
}

func openPebble(dir string, log *slog.Logger) (*pebble.DB, error) {
	// A block cache big enough for the read model's working set: without
	// it every read decompresses blocks it just read.
	cache := pebble.NewCache(64 << 20)
	defer cache.Unref()
	db, err := pebble.Open(dir, &pebble.Options{
		Logger:             pebbleLogger{log},
		FormatMajorVersion: pebble.FormatNewest,
		Cache:              cache,
	})
	if err != nil {
		return nil, fmt.Errorf("open state store %s: %w", dir, err)
	}
	return db, nil
}
