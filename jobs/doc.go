// Package jobs holds cairn's job and task model and its transition rules
// as pure functions: no clocks, no I/O, no randomness. The state machine
// (package fsm) applies journal events through them, so every master moves
// a task the same way; the lease rules are tested here on their own.
//
// # Tasks and leases
//
// A job is split into tasks. A task is PENDING until a worker leases it;
// the lease has an id (assigned by the state machine, unique in the
// cluster) and an expiry in leader time. While the lease is current the
// worker renews it and reports counter deltas; a report with a final state
// ends the task. A lease whose expiry passes (in leader time) is expired:
// the task goes back to PENDING, or to FAILED when it has used its
// delivery limit of leases. A reported failure is retried the same way.
// A task back in PENDING after a failed attempt waits out a backoff (1s,
// 2s, 4s, ... at most a minute, from the event's leader time) before it can
// be leased again.
//
// # Counting exactly once
//
// A report names its (lease, seq). Sequence numbers start at 1 and grow by
// one per report under a lease; the task remembers the highest applied per
// lease, so a report retried after a lost answer or a leader change is a
// repeat and adds nothing. A report under an old lease of the task (one
// that expired) still adds its deltas once — the work happened — but can
// neither end the task nor mark it locally done. A lease id the task never
// granted is refused.
//
// # Job state
//
// A job is RUNNING until every task is final; then it is CANCELLED if it
// was stopped, FAILED if a task failed, SUCCEEDED otherwise. Its counters
// are the sum of its tasks'.
package jobs
