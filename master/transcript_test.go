package master

import (
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairnhq/cairn/fsm"
	"github.com/cairnhq/cairn/persistence"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// The leader's controllers are tested with transcripts in testdata/: events
// go into a real state machine, a controller's decision comes out, for a
// clock the transcript sets. Every decision runs the function the
// controller runs (read its view from the state, decide), minus proposing.
// Regenerate the expected output after a deliberate change with
//
//	go test ./master -run Transcripts -rewrite
//
// Commands (times are seconds after t0, durations Go durations):
//
//	apply [at=S]             each input line is a cairnv1.Event in text form;
//	                         prints each event's result
//	map                      the current map
//	plan                     input: a cairnv1.JobSpec; the workers planJob picks
//	rebalance [apply]        decideRebalance (apply: journal its decision)
//	leases now=S [apply]     expiredLeases
//	liveness now=S since=S timeout=D
//	                         silentWorkers; input lines "seen ID at=S"
//	cleanup now=S leader-since=S settle=D heartbeat-timeout=D [apply]
//	                         decideCleanup; input line "heard ID..."
//	retention now=S          pruneBefore, and whether a finished job is older
//	persist now=S [apply]    persistJobs over the upload queue
//	ufs-copies now=S         ufsCopyPlan; input line "back PATH..."
//	writes now=S timeout=D   abandonWrites over StaleWrites
//	persist-check at=S [apply]
//	                         ufsDrift for every PERSISTED file; input lines
//	                         say what the UFS answers for a path: "PATH gone",
//	                         "PATH error", "PATH size=N mtime=S [etag=E]"
//	                         (a path not listed answers as the journal recorded)
func TestControllerTranscripts(t *testing.T) {
	t.Parallel()
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		t.Parallel()
		h := &transcript{t: t, st: openState(t)}
		datadriven.RunTest(t, path, h.run)
	})
}

// t0 is the transcripts' time zero.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func openState(t *testing.T) *fsm.Machine {
	t.Helper()
	st, err := fsm.Open(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

type transcript struct {
	t     *testing.T
	st    *fsm.Machine
	index uint64
	at    time.Time // leader time of the last apply
}

func (h *transcript) run(t *testing.T, td *datadriven.TestData) string {
	switch td.Cmd {
	case "apply":
		at := h.at
		if td.HasArg("at") {
			at = h.time(t, td, "at")
		}
		var evs []*cairnv1.Event
		for _, line := range lines(td.Input) {
			ev := &cairnv1.Event{}
			if err := prototext.Unmarshal([]byte(line), ev); err != nil {
				t.Fatalf("%s: %q: %v", td.Pos, line, err)
			}
			evs = append(evs, ev)
		}
		return h.apply(t, at, evs...)
	case "map":
		return describeMap(h.st.ClusterMap())
	case "plan":
		spec := &cairnv1.JobSpec{}
		if err := prototext.Unmarshal([]byte(td.Input), spec); err != nil {
			t.Fatalf("%s: %v", td.Pos, err)
		}
		workers, errs, err := h.plan(t, spec)
		if err != nil {
			return "refused: " + err.Error()
		}
		out := fmt.Sprintf("epoch %d, tasks for: %s", spec.GetEpoch(), strings.Join(quoteEmpty(workers), " "))
		for _, w := range sortedKeys(errs) {
			out += fmt.Sprintf("\nno task for %s: %s", w, errs[w])
		}
		return out
	case "rebalance":
		v, err := readRebalance(h.st)
		if err != nil {
			t.Fatal(err)
		}
		stops, spec := decideRebalance(v)
		if spec == nil {
			return "nothing to do"
		}
		evs := stops
		if workers, _, err := h.plan(t, spec); err != nil {
			t.Fatalf("%s: plan the rebalance: %v", td.Pos, err)
		} else {
			evs = append(evs, jobStarted(spec, workers, 0, "rebalance controller"))
		}
		return h.decided(t, td, h.at, evs)
	case "leases":
		now := h.time(t, td, "now")
		leased, err := h.st.LeasedTasks()
		if err != nil {
			t.Fatal(err)
		}
		return h.decided(t, td, now, expiredLeases(now, leased))
	case "liveness":
		now, since := h.time(t, td, "now"), h.time(t, td, "since")
		timeout := duration(t, td, "timeout")
		seen := map[string]time.Time{}
		for _, line := range lines(td.Input) {
			var id string
			var sec int
			if _, err := fmt.Sscanf(line, "seen %s at=%d", &id, &sec); err != nil {
				t.Fatalf("%s: %q: want seen ID at=S", td.Pos, line)
			}
			seen[id] = t0.Add(time.Duration(sec) * time.Second)
		}
		workers, err := h.st.Workers()
		if err != nil {
			t.Fatal(err)
		}
		return h.decided(t, td, now, silentWorkers(now, since, timeout, workers, seen))
	case "cleanup":
		c := cleanupTiming{now: h.time(t, td, "now"), leaderSince: h.time(t, td, "leader-since"),
			settle: duration(t, td, "settle"), heartbeatTimeout: duration(t, td, "heartbeat-timeout")}
		heard := map[string]bool{}
		for _, line := range lines(td.Input) {
			f := strings.Fields(line)
			if len(f) == 0 || f[0] != "heard" {
				t.Fatalf("%s: %q: want heard ID...", td.Pos, line)
			}
			for _, id := range f[1:] {
				heard[id] = true
			}
		}
		v, done, err := readCleanup(h.st, func(id string) bool { return heard[id] })
		if err != nil {
			t.Fatal(err)
		}
		if done {
			return "nothing to do: cleanup.auto is off"
		}
		d := decideCleanup(c, v)
		if err := v.mapErr(); err != nil {
			t.Fatal(err)
		}
		if d.wait != "" {
			return "wait: " + d.wait
		}
		var out []string
		var evs []*cairnv1.Event
		if len(d.clean) > 0 {
			out = append(out, "clean: "+strings.Join(d.clean, " "))
			evs = append(evs, &cairnv1.Event{Kind: &cairnv1.Event_WorkersClean{WorkersClean: &cairnv1.WorkersClean{WorkerIds: d.clean, Epoch: v.current.GetEpoch()}}})
		}
		for _, w := range d.dirty {
			out = append(out, fmt.Sprintf("dirty: %s (%s)", w, d.reasons[w]))
		}
		if len(d.dirty) > 0 {
			spec := &cairnv1.JobSpec{Kind: cairnv1.JobKind_JOB_KIND_CLEANUP, Workers: d.dirty}
			workers, _, err := h.plan(t, spec)
			if err != nil {
				t.Fatalf("%s: plan the cleanup: %v", td.Pos, err)
			}
			evs = append(evs, jobStarted(spec, workers, 0, "cleanup controller"))
		}
		if len(out) == 0 {
			return "nothing to do: every worker is clean"
		}
		if td.HasArg("apply") {
			out = append(out, h.apply(t, c.now, evs...))
		}
		return strings.Join(out, "\n")
	case "retention":
		now := h.time(t, td, "now")
		set, err := h.st.Settings()
		if err != nil {
			t.Fatal(err)
		}
		before := pruneBefore(now, set)
		found, err := h.st.HasEndedBefore(before)
		if err != nil {
			t.Fatal(err)
		}
		if !found {
			return fmt.Sprintf("no job ended before %s", clock(before))
		}
		return h.decided(t, td, now, []*cairnv1.Event{{Kind: &cairnv1.Event_JobsPruned{JobsPruned: &cairnv1.JobsPruned{EndedBefore: timestamppb.New(before)}}}})
	case "persist":
		now := h.time(t, td, "now")
		files, err := h.st.UploadQueue("", 256)
		if err != nil {
			t.Fatal(err)
		}
		var paths []string
		for _, f := range files {
			paths = append(paths, f.GetPath())
		}
		busy, err := uploadsBusy(h.st, paths, now)
		if err != nil {
			t.Fatal(err)
		}
		return h.decided(t, td, now, persistJobs(files, busy, 0))
	case "ufs-copies":
		now := h.time(t, td, "now")
		back := map[string]bool{}
		for _, line := range lines(td.Input) {
			f := strings.Fields(line)
			for _, p := range f[1:] {
				back[p] = true
			}
		}
		gone, err := h.st.UfsDeletes(256)
		if err != nil {
			t.Fatal(err)
		}
		var paths []string
		for _, d := range gone {
			paths = append(paths, d.Path)
		}
		busy, err := uploadsBusy(h.st, paths, now)
		if err != nil {
			t.Fatal(err)
		}
		remove, settled := ufsCopyPlan(gone, back, busy)
		var out []string
		for _, d := range remove {
			out = append(out, "remove "+d.UfsPath)
		}
		for _, d := range settled {
			out = append(out, "settled "+d.Path)
		}
		if len(out) == 0 {
			return "nothing to do"
		}
		return strings.Join(out, "\n")
	case "persist-check":
		return h.persistCheck(t, td)
	case "writes":
		now := h.time(t, td, "now")
		timeout := duration(t, td, "timeout")
		stale, err := h.st.StaleWrites(now.Add(-timeout), 256)
		if err != nil {
			t.Fatal(err)
		}
		return h.decided(t, td, now, abandonWrites(stale, timeout))
	}
	t.Fatalf("%s: unknown command %q", td.Pos, td.Cmd)
	return ""
}

// plan runs planJob on the current state.
func (h *transcript) plan(t *testing.T, spec *cairnv1.JobSpec) ([]string, map[string]string, error) {
	all, err := h.st.Workers()
	if err != nil {
		t.Fatal(err)
	}
	return planJob(spec, h.st.ClusterMap(), all)
}

// decided prints a decision's events, and with the argument apply also
// journals them at at.
func (h *transcript) decided(t *testing.T, td *datadriven.TestData, at time.Time, evs []*cairnv1.Event) string {
	if len(evs) == 0 {
		return "nothing to do"
	}
	var out []string
	for _, ev := range evs {
		out = append(out, describe(ev))
	}
	if td.HasArg("apply") {
		out = append(out, h.apply(t, at, evs...))
	}
	return strings.Join(out, "\n")
}

// apply journals evs as one entry at leader time at and prints the
// results.
func (h *transcript) apply(t *testing.T, at time.Time, evs ...*cairnv1.Event) string {
	if at.Before(h.at) {
		t.Fatalf("apply at %s, before the last apply at %s: leader time does not go back", clock(at), clock(h.at))
	}
	h.at = at
	for _, ev := range evs {
		ev.Time = timestamppb.New(at)
	}
	h.index++
	res := h.st.Apply([]fsm.Entry{{Index: h.index, Events: evs}})[0]
	var out []string
	for _, r := range res {
		switch {
		case r.Code != fsm.OK:
			out = append(out, fmt.Sprintf("-> refused (%s): %s", r.Code, r.Message))
		default:
			s := fmt.Sprintf("-> ok, epoch %d", r.Epoch)
			if r.Value != 0 {
				s += fmt.Sprintf(", value %d", r.Value)
			}
			if r.Repeat {
				s += ", a repeat"
			}
			if r.Stale {
				s += ", stale lease"
			}
			out = append(out, s)
		}
	}
	return strings.Join(out, "\n")
}

func (h *transcript) time(t *testing.T, td *datadriven.TestData, key string) time.Time {
	var sec int
	td.ScanArgs(t, key, &sec)
	return t0.Add(time.Duration(sec) * time.Second)
}

func duration(t *testing.T, td *datadriven.TestData, key string) time.Duration {
	var s string
	td.ScanArgs(t, key, &s)
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("%s: %s=%q: %v", td.Pos, key, s, err)
	}
	return d
}

// clock prints a time as seconds after t0.
func clock(at time.Time) string {
	d := at.Sub(t0).Seconds()
	sign := "+"
	if d < 0 {
		sign, d = "-", -d
	}
	return "t0" + sign + strconv.FormatFloat(d, 'f', -1, 64) + "s"
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func quoteEmpty(ws []string) []string {
	out := slices.Clone(ws)
	for i, w := range out {
		if w == "" {
			out[i] = `""(any owner)`
		}
	}
	if len(out) == 0 {
		return []string{"(none)"}
	}
	return out
}

func describeMap(cm *cairnv1.ClusterMap) string {
	var ws []string
	for _, w := range cm.GetWorkers() {
		ws = append(ws, fmt.Sprintf("%s(%d)", w.GetId(), w.GetCapacityBytes()))
	}
	return fmt.Sprintf("epoch %d, R=%d, workers: %s", cm.GetEpoch(), cm.GetReplication(), strings.Join(ws, " "))
}

// describe prints an event a controller decided, in a stable form (the
// protobuf text format is deliberately unstable).
func describe(ev *cairnv1.Event) string {
	switch k := ev.GetKind().(type) {
	case *cairnv1.Event_JobStopped:
		return fmt.Sprintf("stop job %d: %s", k.JobStopped.GetJobId(), k.JobStopped.GetReason())
	case *cairnv1.Event_JobStarted:
		s := k.JobStarted.GetSpec()
		out := fmt.Sprintf("start %s", kindLabel(s.GetKind()))
		if s.GetEpoch() != 0 {
			out += fmt.Sprintf(" epoch=%d", s.GetEpoch())
		}
		if s.GetPath() != "" {
			out += fmt.Sprintf(" path=%s version=%d", s.GetPath(), s.GetVersion())
		}
		return out + fmt.Sprintf(" tasks for: %s (by %s)", strings.Join(quoteEmpty(k.JobStarted.GetWorkers()), " "), k.JobStarted.GetRequestedBy())
	case *cairnv1.Event_LeaseExpired:
		e := k.LeaseExpired
		return fmt.Sprintf("expire lease %d of task %d/%d", e.GetLeaseId(), e.GetJobId(), e.GetIndex())
	case *cairnv1.Event_WorkerDown:
		e := k.WorkerDown
		return fmt.Sprintf("down %s: last heard at %s, timeout %s", e.GetWorkerId(), clock(e.GetLastHeartbeatTime().AsTime()), e.GetTimeout().AsDuration())
	case *cairnv1.Event_JobsPruned:
		return fmt.Sprintf("prune jobs ended before %s", clock(k.JobsPruned.GetEndedBefore().AsTime()))
	case *cairnv1.Event_UfsCopyDrifted:
		e := k.UfsCopyDrifted
		return fmt.Sprintf("drifted %s version %d %s: %s", e.GetPath(), e.GetVersion(), strings.TrimPrefix(e.GetKind().String(), "UFS_DRIFT_KIND_"), e.GetDetail())
	case *cairnv1.Event_WriteAbandoned:
		e := k.WriteAbandoned
		return fmt.Sprintf("abandon %s version %d: %s", e.GetPath(), e.GetVersion(), e.GetReason())
	}
	return fmt.Sprintf("%T", ev.GetKind())
}

// persistCheck runs the persistence checker's decision over every
// PERSISTED file against the UFS answers the input gives.
func (h *transcript) persistCheck(t *testing.T, td *datadriven.TestData) string {
	answers := map[string]func(f *cairnv1.File) (persistence.Info, error){}
	for _, line := range lines(td.Input) {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			t.Fatalf("%s: %q: want PATH gone|error|size=N mtime=S [etag=E]", td.Pos, line)
		}
		switch fields[1] {
		case "gone":
			answers[fields[0]] = func(*cairnv1.File) (persistence.Info, error) { return persistence.Info{}, persistence.ErrNotFound }
		case "error":
			answers[fields[0]] = func(*cairnv1.File) (persistence.Info, error) {
				return persistence.Info{}, fmt.Errorf("stat: %w", persistence.ErrUnreachable)
			}
		default:
			info := persistence.Info{Path: fields[0]}
			for _, kv := range fields[1:] {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "size":
					n, _ := strconv.ParseInt(v, 10, 64)
					info.Size = n
				case "mtime":
					n, _ := strconv.Atoi(v)
					info.ModTime = t0.Add(time.Duration(n) * time.Second)
				case "etag":
					info.ETag = v
				default:
					t.Fatalf("%s: %q: unknown %s", td.Pos, line, k)
				}
			}
			answers[fields[0]] = func(*cairnv1.File) (persistence.Info, error) { return info, nil }
		}
	}
	files, _, err := h.st.ListFiles("/", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var evs []*cairnv1.Event
	for _, f := range files {
		if f.GetPersistenceState() != cairnv1.PersistenceState_PERSISTENCE_STATE_PERSISTED {
			continue
		}
		answer, ok := answers[f.GetPath()]
		if !ok {
			answer = func(f *cairnv1.File) (persistence.Info, error) {
				return persistence.Info{Path: f.GetPath(), Size: int64(f.GetLength()), ModTime: f.GetUfsMtime().AsTime(), ETag: f.GetUfsEtag()}, nil
			}
		}
		info, serr := answer(f)
		ev, outcome := ufsDrift(f, info, serr)
		out = append(out, fmt.Sprintf("%s: %s", f.GetPath(), outcome))
		if ev != nil {
			evs = append(evs, &cairnv1.Event{Kind: &cairnv1.Event_UfsCopyDrifted{UfsCopyDrifted: ev}})
		}
	}
	if len(out) == 0 {
		return "nothing to check"
	}
	for _, ev := range evs {
		out = append(out, describe(ev))
	}
	if td.HasArg("apply") {
		out = append(out, h.apply(t, h.time(t, td, "at"), evs...))
	}
	return strings.Join(out, "\n")
}
