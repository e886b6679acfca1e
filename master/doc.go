// Package master is the master process: it wires the journal (raft and the
// state machine) to the network as the Connect services of the API, and
// runs the leader's controllers. Three kinds of code live here, each in
// files of its own.
//
// # Handlers: reads, and calls that run on the leader
//
// procedures.go says, for every procedure of every master service, how it
// is served (a test walks them all, so none is forgotten):
//
//   - A read (reads) is answered by whichever master receives it, from its
//     own state, after the read barrier of consistency.go: by default the
//     master learns the leader's commit index (read-index: the leader
//     confirms with a quorum that it still leads) and waits until it has
//     applied it, so the read sees every write acknowledged before it
//     began. The Cairn-Consistency header asks for stale reads instead.
//     Streams (WatchClusterMap, WatchJob, TailEvents) pass the same barrier
//     before their first message.
//   - A leader procedure (leaderProcs) runs on the leader: every write, and
//     the calls that need what only the leader holds (its liveness clock,
//     its lease claims). Its handler is a typed function; onLeader runs it
//     here when this master leads, and otherwise journal.Lead hands the
//     encoded request to the leader over the raft port, where the leader
//     runs the same function (handleCall). One way to the leader, with one
//     hold while no leader is known.
//   - SaveSnapshot (localOps) streams this master's own snapshot.
//
// The services are cluster.go, namespace.go (with persist.go's
// persistence calls and mounts.go's mount table), jobservice.go, leases.go (workers' leases and
// reports), operator.go, events.go, authsvc.go (tokens), and cache.go, the
// seed's REST cache API. master.go starts the process; join.go joins a
// cluster (the secret first, then the voter); propose.go holds the helpers
// that journal events.
//
// # Results and errors
//
// A leader function proposes events and answers from the state machine's
// results: fsm.Result carries the record the event left (no read after
// commit). errors.go maps each source of errors to Connect codes in one
// place: a rejection's code (connectCode), a journal failure (journalErr),
// and the leader's answer to a forwarded call (leadErr keeps its code).
//
// # The leader's controllers
//
// Functions registered with journal.OnLeader run while this master leads:
// rebalance.go, autocleanup.go, leaseexpiry.go, liveness.go, retention.go,
// writetimeout.go, the persistence scheduler in persist.go, the sweep of
// interrupted multipart uploads in mounts.go, and the work a new leader
// does once (leaderwork.go: advertise, mount its flags' mounts with
// mountsToJournal; authsvc.go: the initial tokens). Each one
// reads a view of the journal's state, decides with a pure function of that
// view and the time (now is passed in: decideRebalance, decideCleanup,
// expiredLeases, silentWorkers, pruneBefore, persistJobs, ufsCopyPlan,
// abandonWrites, planJob), and proposes what it decided; that proposal and
// the UFS deletes are its only IO. Everything they decide on comes from the
// journal (or, for liveness, from the leader's own heartbeat clock), so a
// new leader picks up where the last one stopped. The decisions are tested
// with transcripts in testdata/: events into a real state machine,
// decisions out, for a clock the transcript sets (transcript_test.go).
package master
