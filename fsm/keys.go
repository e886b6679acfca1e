package fsm

import "encoding/binary"

var (
	keyApplied     = []byte("a/applied")
	keyTime        = []byte("a/time")
	keyClusterID   = []byte("c/id")
	keyReplication = []byte("c/replication")
	keyEpoch       = []byte("c/epoch")
	prefixEpoch    = []byte("e/")
	prefixMaster   = []byte("m/")
	prefixWorker   = []byte("w/")
)

func epochKey(epoch uint64) []byte {
	k := make([]byte, len(prefixEpoch)+8)
	copy(k, prefixEpoch)
	binary.BigEndian.PutUint64(k[len(prefixEpoch):], epoch)
	return k
}

func workerKey(id string) []byte { return append(append([]byte(nil), prefixWorker...), id...) }
func masterKey(id string) []byte { return append(append([]byte(nil), prefixMaster...), id...) }

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
