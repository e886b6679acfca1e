package fsm

import (
	"encoding/binary"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// This file is the map of the store: every key and key prefix the state
// machine writes, and the functions that build and take apart its keys.
// doc.go's "Keys" section lists the same layout for readers; keys_test.go
// checks that the two agree and that no key space overlaps another.
//
// Every key starts with a one-letter namespace and '/'. A namespace is
// either one prefix, holding one kind of record keyed by what follows it,
// or a few fixed keys (a/ and c/). No key or prefix is a prefix of another,
// so a scan of one prefix never meets another's keys. Numbers in keys are
// big-endian, so that key order is numeric order.

// Apply bookkeeping: written with every Apply call.
var (
	keyApplied = []byte("a/applied")
	keyTime    = []byte("a/time")
)

// Cluster-wide values and sequences.
var (
	keyClusterID   = []byte("c/id")
	keyReplication = []byte("c/replication")
	keyEpoch       = []byte("c/epoch")
	keyFileVersion = []byte("c/file-version")
	keyJobSeq      = []byte("c/job-seq")
	keyLeaseSeq    = []byte("c/lease-seq")
	// The newest epoch a rebalance was started for.
	keyRebalanceEpoch = []byte("c/rebalance-epoch")
	keyUploadMapping  = []byte("c/upload-mapping")
	// How many UfsCopyDrifted events took a file back from PERSISTED.
	keyUfsDrifts = []byte("c/ufs-drifts")
)

// Membership: the cluster maps by epoch, the masters and the workers.
var (
	prefixEpoch  = []byte("e/")
	prefixMaster = []byte("m/")
	prefixWorker = []byte("w/")
)

func epochKey(epoch uint64) []byte {
	k := make([]byte, len(prefixEpoch)+8)
	copy(k, prefixEpoch)
	binary.BigEndian.PutUint64(k[len(prefixEpoch):], epoch)
	return k
}

func workerKey(id string) []byte { return append(append([]byte(nil), prefixWorker...), id...) }
func masterKey(id string) []byte { return append(append([]byte(nil), prefixMaster...), id...) }

// Tokens, by name.
var prefixToken = []byte("h/")

func tokenKey(name string) []byte { return append(append([]byte(nil), prefixToken...), name...) }

// The namespace: files, writes in progress and mounts, by path.
var (
	prefixFile    = []byte("n/")
	prefixPending = []byte("p/")
	prefixMount   = []byte("u/")
)

func fileKey(path string) []byte    { return append(append([]byte(nil), prefixFile...), path...) }
func pendingKey(path string) []byte { return append(append([]byte(nil), prefixPending...), path...) }
func mountKey(path string) []byte   { return append(append([]byte(nil), prefixMount...), path...) }

// underPrefix is the prefix of the keys under prefix whose paths are below
// the folder dir ("" for the root, since paths start with '/').
func underPrefix(prefix []byte, dir string) []byte {
	return append(append(append([]byte(nil), prefix...), dir...), '/')
}

// Job keys (see doc.go).
var (
	prefixJob      = []byte("j/")
	prefixTask     = []byte("t/")
	prefixDedup    = []byte("k/")
	prefixRunning  = []byte("r/")
	prefixEnded    = []byte("x/")
	prefixSettings = []byte("s/")
)

func be8(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func jobKey(id uint64) []byte { return append(append([]byte(nil), prefixJob...), be8(id)...) }

func taskKey(job uint64, index uint32) []byte {
	k := append(append([]byte(nil), prefixTask...), be8(job)...)
	return binary.BigEndian.AppendUint32(k, index)
}

func tasksPrefix(job uint64) []byte { return append(append([]byte(nil), prefixTask...), be8(job)...) }

func dedupKey(key string) []byte { return append(append([]byte(nil), prefixDedup...), key...) }

func runningKey(kind cairnv1.JobKind, id uint64) []byte {
	k := binary.BigEndian.AppendUint32(append([]byte(nil), prefixRunning...), uint32(kind))
	return append(k, be8(id)...)
}

func runningPrefix(kind cairnv1.JobKind) []byte {
	return binary.BigEndian.AppendUint32(append([]byte(nil), prefixRunning...), uint32(kind))
}

func endedKey(ns int64, job uint64) []byte {
	return append(append(append([]byte(nil), prefixEnded...), be8(uint64(ns))...), be8(job)...)
}

func settingKey(name string) []byte { return append(append([]byte(nil), prefixSettings...), name...) }

// Task indexes: the PENDING tasks of each worker's queue and the tasks
// under a live lease. Both keys end with a taskRef.
var (
	prefixQueued = []byte("q/")
	prefixLeased = []byte("l/")
)

// queuedPrefix is the pending-task index of a worker ("" for tasks any
// worker may take).
func queuedPrefix(worker string) []byte {
	return append(append(append([]byte(nil), prefixQueued...), worker...), 0)
}

func queuedKey(worker string, job uint64, index uint32) []byte {
	return binary.BigEndian.AppendUint32(append(queuedPrefix(worker), be8(job)...), index)
}

// queuedValue is what a queue entry holds: its job's kind (uvarint) and
// spec path, all a lease filter looks at, so that a scan can refuse a task
// without reading its job. An empty value (written before entries carried
// it) means: read the job.
func queuedValue(spec *cairnv1.JobSpec) []byte {
	return append(binary.AppendUvarint(nil, uint64(spec.GetKind())), spec.GetPath()...)
}

// decodeQueued reads a queue entry's value; ok is false when it is empty
// or malformed.
func decodeQueued(v []byte) (kind cairnv1.JobKind, path string, ok bool) {
	k, n := binary.Uvarint(v)
	if n <= 0 || k > 1<<31 {
		return 0, "", false
	}
	return cairnv1.JobKind(k), string(v[n:]), true
}

func leasedKey(job uint64, index uint32) []byte {
	return binary.BigEndian.AppendUint32(append(append([]byte(nil), prefixLeased...), be8(job)...), index)
}

// taskRef names a task: the (job, index) the queue and lease index keys
// end with.
type taskRef struct {
	job   uint64
	index uint32
}

// refOf decodes the 12 bytes ending an index key.
func refOf(k []byte) taskRef {
	return taskRef{job: binary.BigEndian.Uint64(k), index: binary.BigEndian.Uint32(k[8:])}
}

// Persistence keys (see doc.go): the upload queue and, per path, the last
// PERSIST job, the UFS copies waiting for removal and the LOST files.
var (
	prefixPersistQueue = []byte("o/")
	prefixPersistJob   = []byte("y/")
	prefixUfsDelete    = []byte("z/")
	prefixLost         = []byte("v/")
)

func persistQueueKey(path string) []byte {
	return append(append([]byte(nil), prefixPersistQueue...), path...)
}

func persistJobKey(path string) []byte {
	return append(append([]byte(nil), prefixPersistJob...), path...)
}

func ufsDeleteKey(path string) []byte {
	return append(append([]byte(nil), prefixUfsDelete...), path...)
}

func lostKey(path string) []byte { return append(append([]byte(nil), prefixLost...), path...) }

// keyspace lists every fixed key and every prefix declared above, by the
// name of its variable. Nothing reads it but keys_test.go, which checks
// that it holds every []byte variable of this file, that no entry is a
// prefix of another, and that each is listed in doc.go. A new key or
// prefix goes here and in doc.go too.
var keyspace = []struct {
	name   string
	key    []byte
	prefix bool // a key space (prefix...) rather than one key (key...)
}{
	{"keyApplied", keyApplied, false},
	{"keyTime", keyTime, false},

	{"keyClusterID", keyClusterID, false},
	{"keyReplication", keyReplication, false},
	{"keyEpoch", keyEpoch, false},
	{"keyFileVersion", keyFileVersion, false},
	{"keyJobSeq", keyJobSeq, false},
	{"keyLeaseSeq", keyLeaseSeq, false},
	{"keyRebalanceEpoch", keyRebalanceEpoch, false},
	{"keyUploadMapping", keyUploadMapping, false},
	{"keyUfsDrifts", keyUfsDrifts, false},

	{"prefixEpoch", prefixEpoch, true},
	{"prefixMaster", prefixMaster, true},
	{"prefixWorker", prefixWorker, true},
	{"prefixToken", prefixToken, true},

	{"prefixFile", prefixFile, true},
	{"prefixPending", prefixPending, true},
	{"prefixMount", prefixMount, true},

	{"prefixJob", prefixJob, true},
	{"prefixTask", prefixTask, true},
	{"prefixDedup", prefixDedup, true},
	{"prefixRunning", prefixRunning, true},
	{"prefixEnded", prefixEnded, true},
	{"prefixSettings", prefixSettings, true},

	{"prefixQueued", prefixQueued, true},
	{"prefixLeased", prefixLeased, true},

	{"prefixPersistQueue", prefixPersistQueue, true},
	{"prefixPersistJob", prefixPersistJob, true},
	{"prefixUfsDelete", prefixUfsDelete, true},
	{"prefixLost", prefixLost, true},
}

// prefixEnd returns the smallest key above every key with the prefix.
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

func u64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func putU64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
