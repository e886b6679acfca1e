// Package journal is cairn's replicated log: a hashicorp/raft node whose
// entries are batches of cairnv1.Event, applied to the fsm state machine.
//
// # Layout on disk
//
//	DATA/identity.json     this master's id, its cluster, the cluster secret
//	DATA/raft/raft.db      raft log and stable store (raft-boltdb v2 on
//	                       bbolt); with Config.LogStore "wal",
//	                       DATA/raft/wal/ instead (hashicorp/raft-wal:
//	                       append-only segments, wal-meta.db)
//	DATA/raft/snapshots/   raft snapshots (FileSnapshotStore)
//	DATA/state/            the state machine (pebble)
//
// # The log store
//
// Every raft entry is made durable on every node before it counts: the log
// store's fsync is on the path of every write. raft-wal appends an entry to
// a segment file with one fdatasync; raft-boltdb rewrites B+tree pages and
// its meta page with two. At 64 proposers in one process that is 2-5x the
// events per second, and the latency of a lone write drops by 40% (see
// BENCHMARKS.md), with the same guarantee: an entry is on disk before
// StoreLogs returns. Yet new folders get bolt: raft-wal v0.4.0 cannot
// reopen a log in which raft cleared a suffix (hashicorp/raft-wal#31, see
// chooseLogStore), which a follower does after most leader failures. A
// folder keeps the store it was made with (Config.LogStore says which for a
// new one, and refuses to switch in place).
//
// # Start without replay
//
// raft runs with NoSnapshotRestoreOnStart: on start it takes the newest
// snapshot's index as applied without restoring it, and replays only the log
// after it. The state machine keeps its own state and applied index in
// pebble, so Open first makes sure pebble is at least as new as that
// snapshot (restoring the snapshot into pebble when it is not, or when the
// store is missing or damaged); entries that raft then replays at or below
// pebble's applied index are skipped by the state machine.
//
// # Group commit
//
// Proposals go through one batcher. It takes every proposal already waiting
// (up to MaxBatchEvents events or maxEntryBytes) and makes them ONE raft
// entry, stamped with the leader's clock; raft then packs many entries per
// append and fsync (BatchApplyCh, MaxAppendEntries) and hands them to the
// state machine as one batch (raft.BatchingFSM), which writes one pebble
// batch. Nothing waits for a batch to fill: a lone proposal goes out at
// once, and batches grow only when proposals arrive faster than raft
// commits them.
//
// # Leader time
//
// The batcher stamps every event with the leader's wall clock, never
// earlier than the last time the state machine has seen, so time in the
// journal does not run backwards across leaders. The state machine reads no
// clock.
//
// # Writes through a follower
//
// Submit journals events from any node. On a follower it hands them to the
// leader over the raft port: the port's listener sorts connections by their
// first byte (raft's RPC types, or forwardMagic), so forwarding needs no
// port of its own. A follower keeps one connection to the leader and
// pipelines every submitter's events over it; a writer goroutine flushes
// whatever is queued in one syscall, so under load many requests and
// answers share a write, as etcd's followers forward proposals inside their
// raft streams. The leader proposes each request through its batcher like
// its own and answers with the index and results. The hello names the
// follower; the leader serves only members of its raft configuration and
// of its cluster. A request the leader refused before proposing (it had
// just stopped leading) is sent again to the next leader; one whose
// connection broke after it was sent is reported as possibly committed,
// never resent.
//
// # Leadership
//
// Functions registered with OnLeader run while this node leads: they start
// after the node has become leader and its state machine has applied
// everything committed before (a barrier), and their context is cancelled as
// soon as leadership is lost.
package journal
