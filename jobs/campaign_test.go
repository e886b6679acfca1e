package jobs_test

// The randomized safety campaign for cleanup: random sequences of joins,
// removals, maintenance, replication changes, writes (some left in
// progress for a while), overwrites, deletes, uploads, UFS removals,
// rebalances and cleanups (forced or not, with and without a window), run
// against the real state machine (fsm) and the real cleanup rules
// (jobs.CleanupTriage and jobs.CleanupVerdict). After every step: no file
// that is not persisted has lost its last cached copy, and a persisted
// file's UFS copy is there. A failing seed is printed with its steps;
// -campaign.seed replays one.

import (
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairnhq/cairn/fsm"
	"github.com/cairnhq/cairn/jobs"
	"github.com/cairnhq/cairn/placement"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

var (
	campaignN     = flag.Int("campaign.n", 1000, "cleanup safety campaign: how many random sequences (seeds 1..n)")
	campaignSteps = flag.Int("campaign.steps", 60, "cleanup safety campaign: steps per sequence")
	campaignSeed  = flag.Uint64("campaign.seed", 0, "cleanup safety campaign: replay this seed only (printed by a failure)")
)

// rules is the cleanup decision a campaign runs: the real one, or a broken
// one to show the campaign catches it.
type rules struct {
	triage  func(jobs.CleanupCopy, *cairnv1.File, uint64, bool, jobs.CleanupScope) (jobs.CleanupStep, *cairnv1.Counters)
	verdict func([]jobs.OwnerAnswer, bool, jobs.CleanupScope) (jobs.CleanupStep, *cairnv1.Counters)
}

var realRules = rules{jobs.CleanupTriage, jobs.CleanupVerdict}

// TestCleanupCampaign runs the campaign over seeds 1..-campaign.n (or the
// one -campaign.seed names) with the real rules.
func TestCleanupCampaign(t *testing.T) {
	t.Parallel()
	seeds := make([]uint64, 0, *campaignN)
	if *campaignSeed != 0 {
		seeds = append(seeds, *campaignSeed)
	} else {
		for s := range uint64(*campaignN) {
			seeds = append(seeds, s+1)
		}
	}
	dir := t.TempDir()
	var stats campaignStats
	for _, seed := range seeds {
		if err := runCampaign(filepath.Join(dir, fmt.Sprint(seed)), seed, *campaignSteps, realRules, &stats); err != nil {
			t.Fatalf("%v\nreplay: go test ./jobs -run 'TestCleanupCampaign$' -campaign.seed=%d -v", err, seed)
		}
	}
	t.Logf("%d sequences, %d steps: %d cleanup tasks removed %d copies (%d forced) and kept %d inside the window; %d uploads, %d UFS removals",
		len(seeds), stats.steps, stats.tasks, stats.removed, stats.forced, stats.recent, stats.uploads, stats.ufsRemovals)
	if *campaignN >= 500 && *campaignSeed == 0 && (stats.removed == 0 || stats.forced == 0 || stats.recent == 0 || stats.uploads == 0) {
		t.Fatalf("the campaign never exercised some rule: %+v", stats)
	}
}

// TestCampaignCatchesBrokenRules plugs in decisions that are each wrong in
// one way and checks that the campaign finds a seed that breaks them.
func TestCampaignCatchesBrokenRules(t *testing.T) {
	t.Parallel()
	mutants := []struct {
		name string
		r    rules
	}{
		{"force ignores persistence", rules{jobs.CleanupTriage, func(a []jobs.OwnerAnswer, persisted bool, s jobs.CleanupScope) (jobs.CleanupStep, *cairnv1.Counters) {
			if s.Force && slices.Contains(a, jobs.OwnerDiverged) {
				return jobs.CleanupRemove, &cairnv1.Counters{Forced: 1}
			}
			return jobs.CleanupVerdict(a, persisted, s)
		}}},
		{"an unreachable owner counts as holding the copy", rules{jobs.CleanupTriage, func(a []jobs.OwnerAnswer, persisted bool, s jobs.CleanupScope) (jobs.CleanupStep, *cairnv1.Counters) {
			if slices.Contains(a, jobs.OwnerUnreachable) {
				return jobs.CleanupRemove, &cairnv1.Counters{}
			}
			return jobs.CleanupVerdict(a, persisted, s)
		}}},
		{"a write in progress is judged as stale", rules{func(c jobs.CleanupCopy, f *cairnv1.File, _ uint64, owned bool, s jobs.CleanupScope) (jobs.CleanupStep, *cairnv1.Counters) {
			return jobs.CleanupTriage(c, f, 0, owned, s)
		}, jobs.CleanupVerdict}},
	}
	for _, m := range mutants {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for seed := uint64(1); seed <= 400; seed++ {
				if err := runCampaign(filepath.Join(dir, fmt.Sprint(seed)), seed, *campaignSteps, m.r, &campaignStats{}); err != nil {
					t.Logf("caught at seed %d: %s", seed, firstLine(err.Error()))
					return
				}
			}
			t.Fatal("400 sequences never caught the broken rule")
		})
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

type campaignStats struct {
	steps, tasks, removed, forced, recent, uploads, ufsRemovals int
}

// cachedCopy is one copy on a worker's disk.
type cachedCopy struct {
	version, sum uint64
	unpersisted  bool
	cached       time.Time
}

type pendingWrite struct {
	path         string
	version, sum uint64
	wt           cairnv1.WriteType
}

type pendingUpload struct {
	job            uint64
	lease, version uint64
	path           string
}

type cleanupRun struct {
	job   uint64
	epoch uint64
	scope jobs.CleanupScope
	tasks []*cairnv1.Task // not yet run
}

// sim is one sequence: the real state machine, and a model of the disks
// and the UFS around it.
type sim struct {
	m       *fsm.Machine
	rng     *rand.Rand
	r       rules
	stats   *campaignStats
	idx     uint64
	now     time.Time
	disks   map[string]map[string]cachedCopy // worker → path → copy
	ufs     map[string]uint64                // path → version held
	writes  []pendingWrite
	uploads []pendingUpload
	cleanup *cleanupRun
	log     []string
}

var paths = []string{"/d/a", "/d/b", "/d/c", "/d/e", "/f/g", "/f/h"}

func runCampaign(dir string, seed uint64, steps int, r rules, stats *campaignStats) (err error) {
	m, err := fsm.Open(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer m.Close()
	s := &sim{m: m, rng: rand.New(rand.NewPCG(seed, 0x5afe)), r: r, stats: stats,
		now: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), disks: map[string]map[string]cachedCopy{}, ufs: map[string]uint64{}}
	s.apply(&cairnv1.Event{Kind: &cairnv1.Event_ReplicationSet{ReplicationSet: &cairnv1.ReplicationSet{Replication: 2}}})
	for range 3 {
		s.join()
	}
	ops := []struct {
		weight int
		fn     func()
	}{
		{4, s.join}, {4, s.down}, {4, s.up}, {3, s.maintain}, {3, s.activate}, {2, s.decommission},
		{3, s.replication}, {16, s.write}, {5, s.completeWrite}, {5, s.delete}, {6, s.upload}, {4, s.reportUpload},
		{3, s.removeUfsCopy}, {6, s.rebalance}, {4, s.placeDiverged}, {5, s.startCleanup}, {14, s.runCleanupTask},
		{2, s.setWindow},
	}
	total := 0
	for _, o := range ops {
		total += o.weight
	}
	for step := range steps {
		s.now = s.now.Add([]time.Duration{time.Second, 30 * time.Second, 5 * time.Minute, 40 * time.Minute, 3 * time.Hour}[s.rng.IntN(5)])
		n := s.rng.IntN(total)
		for _, o := range ops {
			if n < o.weight {
				o.fn()
				break
			}
			n -= o.weight
		}
		stats.steps++
		if msg := s.check(); msg != "" {
			return fmt.Errorf("seed %d, step %d: %s\nsteps:\n  %s", seed, step, msg, strings.Join(s.log, "\n  "))
		}
	}
	return nil
}

func (s *sim) logf(format string, args ...any) {
	s.log = append(s.log, fmt.Sprintf("[%s] ", s.now.Format("01-02 15:04:05"))+fmt.Sprintf(format, args...))
}

// apply journals one event at the simulated leader time.
func (s *sim) apply(ev *cairnv1.Event) fsm.Result {
	s.idx++
	ev.Time = timestamppb.New(s.now)
	r := s.m.Apply([]fsm.Entry{{Index: s.idx, Events: []*cairnv1.Event{ev}}})[0][0]
	if r.Code != fsm.OK {
		s.logf("  refused: %s", r.Message)
	}
	return r
}

func (s *sim) workers(state cairnv1.WorkerState) []string {
	ws, err := s.m.Workers()
	if err != nil {
		panic(err)
	}
	var out []string
	for _, w := range ws {
		if state == cairnv1.WorkerState_WORKER_STATE_UNSPECIFIED || w.GetState() == state {
			out = append(out, w.GetId())
		}
	}
	return out
}

func (s *sim) state(id string) cairnv1.WorkerState {
	w, _, err := s.m.Worker(id)
	if err != nil {
		panic(err)
	}
	return w.GetState()
}

func pick[T any](rng *rand.Rand, xs []T) (T, bool) {
	var zero T
	if len(xs) == 0 {
		return zero, false
	}
	return xs[rng.IntN(len(xs))], true
}

func (s *sim) pm(cm *cairnv1.ClusterMap) *placement.Map {
	pm, err := placement.FromClusterMap(cm)
	if err != nil {
		panic(err)
	}
	return pm
}

func (s *sim) worker(id string) map[string]cachedCopy {
	if s.disks[id] == nil {
		s.disks[id] = map[string]cachedCopy{}
	}
	return s.disks[id]
}
