package journal

import (
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	leaderChanges   prometheus.Counter
	events          prometheus.Counter
	skipped         prometheus.Counter
	commitSeconds   prometheus.Histogram
	entryEvents     prometheus.Histogram
	forwarded       *prometheus.CounterVec
	forwardedBy     map[string]prometheus.Counter // forwarded's children, looked up once
	forwardServed   prometheus.Counter
	readIndex       *prometheus.CounterVec
	readIndexRounds prometheus.Counter
	readIndexRemote prometheus.Counter
	raftRefused     *prometheus.CounterVec
}

func newMetrics(j *Journal, reg prometheus.Registerer) *metrics {
	m := &metrics{
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_raft_leader_changes_total", Help: "Leader changes this master observed."}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_journal_events_total", Help: "Events this master proposed as leader and saw committed."}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_journal_replayed_entries_skipped_total", Help: "Entries raft handed over again that the state store had already applied."}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "cairn_journal_commit_seconds", Help: "Time from proposal to commit and apply on the leader.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16)}),
		entryEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "cairn_journal_entry_events", Help: "Events per raft entry (group commit).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 13)}),
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_journal_forwarded_total",
			Help: "Calls this master, as a follower, sent to the leader, by outcome: answered (the leader ran it, whatever its answer), lost (the connection broke after sending; it may have taken effect), failed, no_leader (none took it within the hold)."},
			[]string{"outcome"}),
		forwardServed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_journal_forward_served_calls_total", Help: "Calls followers forwarded to this master that it ran as leader."}),
		readIndex: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_journal_read_index_total",
			Help: "Read-index requests made on this master (each linearizable read makes one), by outcome: ok, no_leader (none answered in time), failed."},
			[]string{"outcome"}),
		readIndexRounds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_journal_read_index_rounds_total",
			Help: "Leadership confirmations this master ran as leader for read-index requests; many requests share one round."}),
		raftRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_raft_refused_connections_total",
			Help: "Connections to the raft port refused because they did not prove membership of the cluster, by reason: no_proof (refused at the first byte), bad_proof (wrong cluster secret), tls (no valid TLS or client certificate)."},
			[]string{"reason"}),
		readIndexRemote: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_journal_read_index_asked_total",
			Help: "Read-index requests this master, as a follower, sent to the leader; each serves every read waiting at the time."}),
	}
	m.forwardedBy = map[string]prometheus.Counter{}
	for _, o := range []string{"answered", "lost", "failed", "no_leader"} {
		m.forwardedBy[o] = m.forwarded.WithLabelValues(o)
	}
	state := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "cairn_raft_state", Help: "1 for this master's current raft state, 0 for the others."}, []string{"state"})
	reg.MustRegister(m.leaderChanges, m.events, m.skipped, m.commitSeconds, m.entryEvents, m.forwarded, m.forwardServed, m.readIndex, m.readIndexRounds, m.readIndexRemote, m.raftRefused,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cairn_journal_applied_index", Help: "Index of the last entry applied to the state machine."},
			func() float64 { return float64(j.machine.AppliedIndex()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cairn_raft_term", Help: "Current raft term."},
			func() float64 {
				if j.raft == nil {
					return 0
				}
				return float64(j.raft.CurrentTerm())
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cairn_raft_last_log_index", Help: "Index of the last entry in this master's raft log."},
			func() float64 {
				if j.raft == nil {
					return 0
				}
				return float64(j.raft.LastIndex())
			}),
		&stateCollector{j: j, vec: state},
	)
	return m
}

// stateCollector refreshes cairn_raft_state at scrape time.
type stateCollector struct {
	j   *Journal
	vec *prometheus.GaugeVec
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) { c.vec.Describe(ch) }

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	cur := raft.Shutdown
	if c.j.raft != nil {
		cur = c.j.raft.State()
	}
	for _, s := range []raft.RaftState{raft.Follower, raft.Candidate, raft.Leader, raft.Shutdown} {
		v := 0.0
		if s == cur {
			v = 1
		}
		c.vec.WithLabelValues(s.String()).Set(v)
	}
	c.vec.Collect(ch)
}
