package master

import (
	"github.com/prometheus/client_golang/prometheus"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

type metrics struct {
	forwarded *prometheus.CounterVec
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
	mt := &metrics{
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_master_forwarded_requests_total",
			Help: "Leader-only calls this master received as a follower, by procedure and outcome (forwarded, served_after_hold, refused, no_leader).",
		}, []string{"procedure", "outcome"}),
	}
	reg.MustRegister(mt.forwarded,
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
func stateLabel(s cairnv1.WorkerState) string {
	const prefix = "WORKER_STATE_"
	n := s.String()
	if len(n) > len(prefix) {
		return n[len(prefix):]
	}
	return n
}
