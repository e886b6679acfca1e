package master

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

type metrics struct {
	jobsStarted *prometheus.CounterVec
	reports     *prometheus.CounterVec
	leases      prometheus.Counter
	expired     prometheus.Counter
	abandoned   prometheus.Counter
	// persistChecks counts the persistence checker's looks at UFS copies.
	persistChecks *prometheus.CounterVec
}

// jobKinds are the label values of the job metrics, in a fixed order.
var jobKinds = []cairnv1.JobKind{
	cairnv1.JobKind_JOB_KIND_REBALANCE,
	cairnv1.JobKind_JOB_KIND_CLEANUP,
	cairnv1.JobKind_JOB_KIND_PERSIST,
	cairnv1.JobKind_JOB_KIND_FREE,
}

// workerStates are the label values of cairn_workers, in a fixed order.
var workerStates = []cairnv1.WorkerState{
	cairnv1.WorkerState_WORKER_STATE_ACTIVE,
	cairnv1.WorkerState_WORKER_STATE_MAINTENANCE,
	cairnv1.WorkerState_WORKER_STATE_DECOMMISSIONING,
	cairnv1.WorkerState_WORKER_STATE_DOWN,
	cairnv1.WorkerState_WORKER_STATE_REMOVED,
}

func newMetrics(m *Master, reg prometheus.Registerer) *metrics {
	mt := &metrics{}
	mt.jobsStarted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cairn_jobs_started_total",
		Help: "Jobs this master started as leader, by kind.",
	}, []string{"kind"})
	mt.reports = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cairn_task_reports_total",
		Help: "Task reports this master journaled as leader, by outcome (counted; repeat: applied before; stale_lease: counted but could not end the task; refused: not counted).",
	}, []string{"outcome"})
	mt.leases = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cairn_task_leases_granted_total",
		Help: "Task leases this master granted as leader.",
	})
	mt.expired = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cairn_task_leases_expired_total",
		Help: "Task leases this master expired as leader (the worker stopped renewing).",
	})
	mt.abandoned = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cairn_writes_abandoned_total",
		Help: "Writes this master abandoned as leader because they stayed created and not completed past --write-timeout.",
	})
	mt.persistChecks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cairn_persist_checks_total",
		Help: "UFS copies of persisted files this master's persistence checker looked at as leader, by outcome (intact, gone, changed, error: the store did not answer).",
	}, []string{"outcome"})
	for _, o := range []string{checkIntact, checkGone, checkChanged, checkError} {
		mt.persistChecks.WithLabelValues(o)
	}
	reg.MustRegister(mt.jobsStarted, mt.reports, mt.leases, mt.expired, mt.abandoned, mt.persistChecks,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "cairn_persist_ufs_drifts_total",
			Help: "Files whose UFS copy could not be trusted: persisted files taken back because their UFS copy went away or changed out of band, and CACHE_THROUGH writes that raced an upload of an older version; as this master has applied the journal.",
		}, func() float64 {
			n, _ := m.j.State().UfsDrifts()
			return float64(n)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cairn_task_leases_live",
			Help: "Tasks under a live lease, as this master has applied the journal.",
		}, func() float64 {
			l, _ := m.j.State().LeasedTasks()
			return float64(len(l))
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cairn_persist_queue_files",
			Help: "Files waiting for an upload to the UFS (TO_BE_PERSISTED without an error; at most 100,000 counted), as this master has applied the journal.",
		}, func() float64 {
			n, _ := m.j.State().UploadQueueLen(100000)
			return float64(n)
		}),
		&jobsCollector{m: m, desc: prometheus.NewDesc("cairn_jobs_running",
			"Running jobs, by kind, as this master has applied the journal.", []string{"kind"}, nil)},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cairn_cluster_epoch",
			Help: "Epoch of the cluster map as this master has applied it.",
		}, func() float64 { return float64(m.j.State().ClusterMap().GetEpoch()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cairn_cluster_replication",
			Help: "Replication factor R of the current cluster map.",
		}, func() float64 { return float64(m.j.State().ClusterMap().GetReplication()) }),
		&workersCollector{m: m, desc: prometheus.NewDesc("cairn_workers",
			"Workers the journal knows, by state.", []string{"state"}, nil)},
	)
	return mt
}

// workersCollector reports cairn_workers{state} from the state store at
// scrape time.
type workersCollector struct {
	m    *Master
	desc *prometheus.Desc
}

func (c *workersCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *workersCollector) Collect(ch chan<- prometheus.Metric) {
	workers, err := c.m.j.State().Workers()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	counts := make(map[cairnv1.WorkerState]int)
	for _, w := range workers {
		counts[w.GetState()]++
	}
	for _, s := range workerStates {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[s]), stateLabel(s))
	}
}

// stateLabel is the short upper-case name of a worker state.
func stateLabel(s cairnv1.WorkerState) string { return strings.TrimPrefix(s.String(), "WORKER_STATE_") }

// jobsCollector reports cairn_jobs_running{kind} from the state store.
type jobsCollector struct {
	m    *Master
	desc *prometheus.Desc
}

func (c *jobsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *jobsCollector) Collect(ch chan<- prometheus.Metric) {
	for _, k := range jobKinds {
		running, err := c.m.j.State().RunningJobs(k)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.desc, err)
			return
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(len(running)), kindLabel(k))
	}
}
