package fsm

import (
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// txn is one Apply call's view: reads see its own uncommitted writes.
type txn struct {
	b         *pebble.Batch
	now       int64 // leader time of the event being applied, unix ns
	cur       *cairnv1.ClusterMap
	clusterID *string
	// queued is, per worker queue, the lowest key this txn made PENDING (for
	// the read hints only; nothing is written from it).
	queued map[string][]byte
	// actor is the name of the token whose call wrote the event being
	// applied (empty for the leader's own events).
	actor string
	// tokens is set when the txn changed the token table.
	tokens bool
}

func (m *Machine) newTxn() *txn {
	return &txn{b: m.db.NewIndexedBatch(), now: m.lastTime.Load(), cur: nil}
}

func (t *txn) fail(err error) {
	panic(fmt.Sprintf("fsm: state store: %v", err))
}

func (t *txn) put(key, value []byte) {
	if err := t.b.Set(key, value, nil); err != nil {
		t.fail(err)
	}
}

func (t *txn) putProto(key []byte, msg proto.Message) { t.put(key, marshal(msg)) }

func (t *txn) del(key []byte) {
	if err := t.b.Delete(key, nil); err != nil {
		t.fail(err)
	}
}

func (t *txn) getProto(key []byte, msg proto.Message) bool {
	ok, err := getProto(t.b, key, msg)
	if err != nil {
		t.fail(err)
	}
	return ok
}

func (t *txn) getRaw(key []byte) []byte {
	v, err := getRaw(t.b, key)
	if err != nil {
		t.fail(err)
	}
	return v
}

func (t *txn) timestamp() *timestamppb.Timestamp {
	return timestamppb.New(time.Unix(0, t.now))
}

func (t *txn) epoch() uint64 { return u64(t.getRaw(keyEpoch)) }

func (t *txn) replication() uint32 {
	v := t.getRaw(keyReplication)
	if len(v) != 8 {
		return 1
	}
	return uint32(u64(v))
}

func ok(epoch uint64) Result { return Result{Code: OK, Epoch: epoch} }

func (t *txn) reject(code Code, format string, args ...any) Result {
	return Result{Code: code, Message: fmt.Sprintf(format, args...), Epoch: t.epoch()}
}

func (t *txn) at() time.Time { return time.Unix(0, t.now) }

func (t *txn) next(key []byte) uint64 {
	v := u64(t.getRaw(key)) + 1
	t.put(key, putU64(v))
	return v
}

func (t *txn) ruleErr(err error) Result {
	return t.reject(FailedPrecondition, "%s", err.Error())
}
