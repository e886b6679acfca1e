// Package fsm is cairn's deterministic state machine: it applies journal
// entries (batches of cairnv1.Event) to state kept in pebble and serves the
// read model the API needs.
//
// # Determinism
//
// Every master applies the same entries in the same order and must end with
// byte-identical state. So apply code never reads a clock (time comes from
// the event the leader stamped), never draws random numbers, never ranges
// over a Go map when writing, and marshals protobufs deterministically.
// Rejections (a transition that is not allowed, an unknown worker) are
// results, not errors: every replica rejects the same event the same way and
// writes nothing for it.
//
// # Durability
//
// One call to Apply writes one pebble batch holding the effects of all its
// entries and the index of the last one. The batch is committed without its
// own fsync: the raft log is the durable record, and an entry whose index is
// at or below the stored applied index is skipped, so replaying the log after
// a crash is harmless. Sync makes everything applied so far durable; the
// journal calls it before it reports a raft snapshot complete, because with
// raft's NoSnapshotRestoreOnStart the state on disk must be at least as new
// as the newest snapshot.
//
// # Keys
//
// Every key starts with a one-letter namespace and '/'; a namespace holds
// either a few fixed keys (a/, c/) or one kind of record. keys.go declares
// them all and builds the keys; a test checks it against this list.
// Numbers in keys are big-endian.
//
//	a/applied         last applied raft index (uint64, big-endian)
//	a/time            leader time of the last applied event (unix ns, int64)
//	c/id              cluster id
//	c/replication     replication factor R (uint64, at most MaxReplication)
//	c/epoch           current epoch (uint64)
//	c/file-version    the last file version handed out, at create (uint64)
//	c/job-seq         the last job id handed out (uint64)
//	c/lease-seq       the last lease id handed out (uint64)
//	c/rebalance-epoch the newest epoch a rebalance was started for (uint64)
//	c/upload-mapping  the async upload mapping (UploadMapping)
//	c/ufs-drifts      UfsCopyDrifted events that took a file back from PERSISTED (uint64)
//	e/<epoch>         ClusterMap at that epoch (epoch big-endian)
//	m/<master id>     MasterAdvertised
//	w/<worker id>     Worker
//	h/<name>          Token: a token's name, role and SHA-256 (never the token)
//	n/<path>          File: the current version of a path
//	p/<path>          PendingWrite: a write of the path in progress
//	u/<path>          Mount: the UFS (file:///DIR, s3://BUCKET/PREFIX) or cache-only mount serving the path and below (longest path wins)
//	j/<job>           Job (job id big-endian)
//	t/<job><index>    Task (index big-endian uint32)
//	k/<dedup key>     the running job with that key (its id)
//	r/<kind><job>     running jobs by kind (empty value)
//	x/<ended><job>    finished jobs by end time (unix ns), for retention
//	s/<name>          a job controller setting (text)
//	q/<worker>0<job><index>  PENDING tasks of a worker ("" for any worker; 0 is a zero byte; value: the job's kind and path)
//	l/<job><index>    tasks under a live lease (empty value)
//	o/<path>          files waiting for an upload: TO_BE_PERSISTED, no error
//	y/<path>          the path's last PERSIST job (its id)
//	z/<path>          a deleted file whose UFS copy waits for removal (value: its UFS path)
//	v/<path>          a LOST file (no copy found to upload), persistable again when a worker returns
//
// Job and task transitions follow the rules in package jobs; this package
// only loads, stores and indexes what they change.
//
// # Snapshots
//
// A snapshot is every key and value of a consistent pebble snapshot, in key
// order, framed as described in snapshot.go and sealed with an XXH64 of the
// stream; Restore checks the seal before it replaces the store.
package fsm
