package main

import (
	"compress/gzip"
	"encoding/json"
	"math"
	"os"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// ops builds a history from (call, return, input, output) rows; a return of
// -1 is an ambiguous call (it may take effect at any time after its call).
type row struct {
	call, ret int64
	in, out   any
}

func hist(rows ...row) []porcupine.Operation {
	out := make([]porcupine.Operation, len(rows))
	for i, r := range rows {
		ret := r.ret
		if ret < 0 {
			ret = math.MaxInt64
		}
		out[i] = porcupine.Operation{ClientId: i, Call: r.call, Return: ret, Input: r.in, Output: r.out}
	}
	return out
}

func put(file int, sum uint64) nsInput { return nsInput{Kind: nsPut, File: file, Sum: sum} }
func get(file int) nsInput             { return nsInput{Kind: nsGet, File: file} }
func del(file int) nsInput             { return nsInput{Kind: nsDelete, File: file} }
func list() nsInput                    { return nsInput{Kind: nsList} }

func at(sum, version uint64) nsOutput {
	return nsOutput{Entry: entry{Present: true, Sum: sum, Version: version}}
}

func check(t *testing.T, m porcupine.Model, h []porcupine.Operation) porcupine.CheckResult {
	t.Helper()
	return porcupine.CheckOperationsTimeout(m, h, 10*time.Second)
}

func TestNamespaceModel(t *testing.T) {
	listing := func(es ...entry) nsOutput {
		var o nsOutput
		copy(o.List[:], es)
		return o
	}
	cases := []struct {
		name string
		want porcupine.CheckResult
		h    []porcupine.Operation
	}{
		{"writes, reads, a delete, a list", porcupine.Ok, hist(
			row{0, 10, put(0, 7), nsOutput{Version: 3}},
			row{11, 12, get(0), at(7, 3)},
			row{13, 20, put(1, 8), nsOutput{Version: 5}},
			row{21, 22, list(), listing(entry{true, 7, 3}, entry{true, 8, 5})},
			row{23, 24, del(0), nsOutput{Deleted: 1}},
			row{25, 26, get(0), nsOutput{}},
			row{27, 28, del(0), nsOutput{}},
		)},
		{"a read concurrent with a write sees either", porcupine.Ok, hist(
			row{0, 10, put(0, 7), nsOutput{Version: 3}},
			row{20, 40, put(0, 9), nsOutput{Version: 4}},
			row{25, 30, get(0), at(7, 3)},
			row{31, 35, get(0), at(9, 4)},
		)},
		{"a stale read after an acknowledged write", porcupine.Illegal, hist(
			row{0, 10, put(0, 7), nsOutput{Version: 3}},
			row{20, 30, put(0, 9), nsOutput{Version: 4}},
			row{31, 35, get(0), at(7, 3)},
		)},
		{"an acknowledged write lost", porcupine.Illegal, hist(
			row{0, 10, put(0, 7), nsOutput{Version: 3}},
			row{11, 12, list(), listing()},
		)},
		{"the wrong version of the right bytes", porcupine.Illegal, hist(
			row{0, 10, put(0, 7), nsOutput{Version: 3}},
			row{11, 12, get(0), at(7, 2)},
		)},
		{"a deleted file read back", porcupine.Illegal, hist(
			row{0, 10, put(0, 7), nsOutput{Version: 3}},
			row{11, 12, del(0), nsOutput{Deleted: 1}},
			row{13, 14, get(0), at(7, 3)},
		)},
		{"an ambiguous write seen, its version learnt", porcupine.Ok, hist(
			row{0, -1, put(0, 7), nsOutput{Ambiguous: true}},
			row{20, 21, get(0), nsOutput{}},
			row{22, 23, get(0), at(7, 11)},
			row{24, 25, get(0), at(7, 11)},
		)},
		{"an ambiguous write seen, then gone", porcupine.Illegal, hist(
			row{0, -1, put(0, 7), nsOutput{Ambiguous: true}},
			row{22, 23, get(0), at(7, 11)},
			row{24, 25, get(0), nsOutput{}},
		)},
		{"an ambiguous write seen under two versions", porcupine.Illegal, hist(
			row{0, -1, put(0, 7), nsOutput{Ambiguous: true}},
			row{22, 23, get(0), at(7, 11)},
			row{24, 25, get(0), at(7, 12)},
		)},
		{"an ambiguous delete may be seen or not", porcupine.Ok, hist(
			row{0, 10, put(0, 7), nsOutput{Version: 3}},
			row{11, -1, del(0), nsOutput{Ambiguous: true}},
			row{20, 21, get(0), at(7, 3)},
			row{22, 23, get(0), nsOutput{}},
		)},
		{"a delete that found nothing to delete", porcupine.Illegal, hist(
			row{0, 10, put(0, 7), nsOutput{Version: 3}},
			row{11, 12, del(0), nsOutput{Deleted: 0}},
		)},
	}
	for _, c := range cases {
		if got := check(t, namespaceModel, c.h); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

func TestJobsModel(t *testing.T) {
	start := jobInput{Kind: jobStart, ID: 1}
	get := jobInput{Kind: jobGet, ID: 1}
	stop := jobInput{Kind: jobStop, ID: 1}
	running := jobOutput{State: cairnv1.JobState_JOB_STATE_RUNNING}
	started := jobOutput{Created: true, State: cairnv1.JobState_JOB_STATE_RUNNING}
	succeeded := jobOutput{State: cairnv1.JobState_JOB_STATE_SUCCEEDED}
	cancelled := jobOutput{State: cairnv1.JobState_JOB_STATE_CANCELLED}
	cases := []struct {
		name string
		want porcupine.CheckResult
		h    []porcupine.Operation
	}{
		{"stopped while running", porcupine.Ok, hist(
			row{0, 1, start, started}, row{2, 3, get, running},
			row{4, 5, stop, jobOutput{Stopped: 1}}, row{6, 7, get, cancelled},
			row{8, 9, stop, jobOutput{}})},
		{"ended by itself, then a stop finds nothing to stop", porcupine.Ok, hist(
			row{0, 1, start, started}, row{4, 5, stop, jobOutput{}}, row{6, 7, get, succeeded})},
		{"running again after it ended", porcupine.Illegal, hist(
			row{0, 1, start, started}, row{2, 3, get, succeeded}, row{4, 5, get, running})},
		{"running after a stop stopped it", porcupine.Illegal, hist(
			row{0, 1, start, started}, row{2, 3, stop, jobOutput{Stopped: 1}}, row{4, 5, get, running})},
		{"cancelled with nobody stopping it", porcupine.Illegal, hist(
			row{0, 1, start, started}, row{2, 3, get, cancelled})},
		{"not found after its start", porcupine.Illegal, hist(
			row{0, 1, start, started}, row{2, 3, get, jobOutput{NotFound: true}})},
		{"an ambiguous stop may have stopped it", porcupine.Ok, hist(
			row{0, 1, start, started}, row{2, -1, stop, jobOutput{Ambiguous: true}}, row{4, 5, get, cancelled})},
		{"a stop that stopped nothing, then cancelled", porcupine.Illegal, hist(
			row{0, 1, start, started}, row{2, 3, stop, jobOutput{}}, row{4, 5, get, cancelled})},
	}
	for _, c := range cases {
		if got := check(t, jobsModel, c.h); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

// The checker can fail: a model with a bug put in (a put does not replace
// a file) rejects a history the real model accepts.
func TestBrokenModelRejects(t *testing.T) {
	h := hist(
		row{0, 10, put(0, 7), nsOutput{Version: 3}},
		row{11, 20, put(0, 9), nsOutput{Version: 4}},
		row{21, 22, get(0), at(9, 4)},
	)
	if got := check(t, namespaceModel, h); got != porcupine.Ok {
		t.Fatalf("the model: %s", got)
	}
	if got := check(t, brokenNamespaceModel, h); got != porcupine.Illegal {
		t.Fatalf("the broken model: %s, want Illegal", got)
	}
}

// A history a drill recorded (leader-pause: reads through every master,
// the leader frozen and resumed five times) is linearizable under both
// models, and the broken model rejects it.
func TestRecordedHistory(t *testing.T) {
	f, err := os.Open("testdata/leader-pause-history.json.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var saved savedHistory
	if err := json.NewDecoder(zr).Decode(&saved); err != nil {
		t.Fatal(err)
	}
	ns, jobs := loadOps(saved.Namespace), loadOps(saved.Jobs)
	if len(ns) < 500 || len(jobs) < 100 {
		t.Fatalf("a thin history: %d namespace and %d job operations", len(ns), len(jobs))
	}
	if got := check(t, namespaceModel, ns); got != porcupine.Ok {
		t.Errorf("namespace history: %s", got)
	}
	if got := check(t, jobsModel, jobs); got != porcupine.Ok {
		t.Errorf("job history: %s", got)
	}
	if got := check(t, brokenNamespaceModel, ns); got != porcupine.Illegal {
		t.Errorf("the broken model on the recorded history: %s, want Illegal", got)
	}
}
