package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/anishathalye/porcupine"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// The drills check their histories with two porcupine models: the
// namespace, partitioned by folder (each of the workload's folders holds a
// few files, and a list reads one folder), and jobs, partitioned by job id.
//
// A call that failed in a way that may have taken effect (Unavailable,
// a deadline, a broken connection) is kept with an infinite return time,
// so porcupine may place its effect anywhere after its call, or nowhere
// (at the very end); its output is unknown, and the model accepts any. A
// read that failed observed nothing and is left out.

// filesPerDir is how many files each folder of the workload holds.
const filesPerDir = 4

type nsKind uint8

const (
	nsPut nsKind = iota + 1
	nsGet
	nsDelete
	nsList
)

func (k nsKind) String() string {
	return [...]string{"?", "put", "get", "delete", "list"}[k]
}

// nsInput is one namespace call: a write of a new version of a file (create,
// data to the owners, complete), a GetFile, a DeleteFile, or a ListFiles of
// the folder.
type nsInput struct {
	Kind nsKind `json:"kind"`
	Dir  int    `json:"dir"`
	File int    `json:"file"`
	// Sum is the XXH64 of what a put writes; every put writes content of
	// its own, so a sum names the put.
	Sum uint64 `json:"sum,omitempty"`
}

// entry is one file as the namespace shows it. Version 0 is "not known":
// the put that wrote it ended ambiguously, so the model learns its version
// from the first read that sees it.
type entry struct {
	Present bool   `json:"present,omitempty"`
	Sum     uint64 `json:"sum,omitempty"`
	Version uint64 `json:"version,omitempty"`
}

type nsOutput struct {
	Ambiguous bool               `json:"ambiguous,omitempty"`
	Version   uint64             `json:"version,omitempty"` // put
	Entry     entry              `json:"entry"`             // get
	Deleted   uint64             `json:"deleted,omitempty"` // delete
	List      [filesPerDir]entry `json:"list"`              // list
}

// dirState is a folder: its files, by index.
type dirState [filesPerDir]entry

// seen checks what a read returned against the model's entry, and returns
// the entry with its version learnt.
func seen(want, got entry) (bool, entry) {
	if want.Present != got.Present {
		return false, want
	}
	if !want.Present {
		return true, want
	}
	if want.Sum != got.Sum || (want.Version != 0 && want.Version != got.Version) {
		return false, want
	}
	return true, got
}

func nsStep(state, input, output any) (bool, any) {
	s := state.(dirState)
	in, out := input.(nsInput), output.(nsOutput)
	switch in.Kind {
	case nsPut:
		if out.Ambiguous {
			s[in.File] = entry{Present: true, Sum: in.Sum}
		} else {
			s[in.File] = entry{Present: true, Sum: in.Sum, Version: out.Version}
		}
		return true, s
	case nsDelete:
		if !out.Ambiguous {
			want := uint64(0)
			if s[in.File].Present {
				want = 1
			}
			if out.Deleted != want {
				return false, s
			}
		}
		s[in.File] = entry{}
		return true, s
	case nsGet:
		ok, e := seen(s[in.File], out.Entry)
		s[in.File] = e
		return ok, s
	case nsList:
		for i := range s {
			ok, e := seen(s[i], out.List[i])
			if !ok {
				return false, s
			}
			s[i] = e
		}
		return true, s
	}
	return false, s
}

func describeEntry(e entry) string {
	if !e.Present {
		return "-"
	}
	if e.Version == 0 {
		return fmt.Sprintf("%04x@?", e.Sum&0xffff)
	}
	return fmt.Sprintf("%04x@v%d", e.Sum&0xffff, e.Version)
}

// namespaceModel is the namespace, one folder per partition.
var namespaceModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[int][]porcupine.Operation{}
		for _, op := range h {
			d := op.Input.(nsInput).Dir
			by[d] = append(by[d], op)
		}
		return sortedParts(by)
	},
	Init: func() any { return dirState{} },
	Step: nsStep,
	DescribeOperation: func(input, output any) string {
		in, out := input.(nsInput), output.(nsOutput)
		name := fmt.Sprintf("f%d", in.File)
		res := ""
		switch {
		case out.Ambiguous:
			res = "?"
		case in.Kind == nsPut:
			res = fmt.Sprintf("v%d", out.Version)
		case in.Kind == nsGet:
			res = describeEntry(out.Entry)
		case in.Kind == nsDelete:
			res = fmt.Sprint(out.Deleted)
		case in.Kind == nsList:
			var parts []string
			for _, e := range out.List {
				parts = append(parts, describeEntry(e))
			}
			res = "[" + strings.Join(parts, " ") + "]"
			name = fmt.Sprintf("d%d", in.Dir)
		}
		if in.Kind == nsPut {
			return fmt.Sprintf("put(%s, %04x) -> %s", name, in.Sum&0xffff, res)
		}
		return fmt.Sprintf("%s(%s) -> %s", in.Kind, name, res)
	},
	DescribeState: func(state any) string {
		s := state.(dirState)
		var parts []string
		for i, e := range s {
			parts = append(parts, fmt.Sprintf("f%d=%s", i, describeEntry(e)))
		}
		return strings.Join(parts, " ")
	},
}

// brokenNamespaceModel is namespaceModel with a bug put in on purpose: a
// put does not replace a file that exists. A drill's history must be
// rejected by it, or the history is too thin to show anything.
var brokenNamespaceModel = func() porcupine.Model {
	m := namespaceModel
	m.Step = func(state, input, output any) (bool, any) {
		if in := input.(nsInput); in.Kind == nsPut && state.(dirState)[in.File].Present {
			return true, state
		}
		return nsStep(state, input, output)
	}
	return m
}()

type jobKind uint8

const (
	jobStart jobKind = iota + 1
	jobGet
	jobStop
)

func (k jobKind) String() string { return [...]string{"?", "start", "get", "stop"}[k] }

// jobInput is StartJob (a FREE job of a prefix no other start uses, so
// every start makes a job), GetJob or StopJob of a job a start returned.
type jobInput struct {
	Kind jobKind `json:"kind"`
	ID   uint64  `json:"id"`
}

type jobOutput struct {
	Ambiguous bool             `json:"ambiguous,omitempty"`
	Created   bool             `json:"created,omitempty"`   // start
	NotFound  bool             `json:"not_found,omitempty"` // get
	State     cairnv1.JobState `json:"state,omitempty"`     // start, get
	Stopped   uint32           `json:"stopped,omitempty"`   // stop
}

// jobPhase is a job as the model knows it. A running job may end by
// itself at any moment (its tasks are done), so a read that sees it ended
// moves the model on; ended and cancelled are final.
type jobPhase uint8

const (
	jobAbsent jobPhase = iota
	jobRunning
	jobEnded // ended by itself, SUCCEEDED or FAILED not yet seen
	jobSucceeded
	jobFailed
	jobCancelled
)

func jobStep(state, input, output any) (bool, any) {
	s := state.(jobPhase)
	in, out := input.(jobInput), output.(jobOutput)
	switch in.Kind {
	case jobStart:
		ok := s == jobAbsent && out.Created && out.State == cairnv1.JobState_JOB_STATE_RUNNING
		return ok, jobRunning
	case jobStop:
		if out.Ambiguous {
			if s == jobRunning {
				return true, jobCancelled
			}
			return true, s
		}
		switch {
		case s == jobRunning && out.Stopped == 1:
			return true, jobCancelled
		case s == jobRunning && out.Stopped == 0:
			return true, jobEnded
		case s == jobAbsent:
			return false, s
		default:
			return out.Stopped == 0, s
		}
	case jobGet:
		if out.NotFound {
			return s == jobAbsent, s
		}
		st := out.State
		switch s {
		case jobRunning:
			switch st {
			case cairnv1.JobState_JOB_STATE_RUNNING:
				return true, s
			case cairnv1.JobState_JOB_STATE_SUCCEEDED:
				return true, jobSucceeded
			case cairnv1.JobState_JOB_STATE_FAILED:
				return true, jobFailed
			}
			return false, s
		case jobEnded:
			switch st {
			case cairnv1.JobState_JOB_STATE_SUCCEEDED:
				return true, jobSucceeded
			case cairnv1.JobState_JOB_STATE_FAILED:
				return true, jobFailed
			}
			return false, s
		case jobSucceeded:
			return st == cairnv1.JobState_JOB_STATE_SUCCEEDED, s
		case jobFailed:
			return st == cairnv1.JobState_JOB_STATE_FAILED, s
		case jobCancelled:
			return st == cairnv1.JobState_JOB_STATE_CANCELLED, s
		}
		return false, s
	}
	return false, s
}

// jobsModel is the jobs the workload starts, one job per partition.
var jobsModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[int][]porcupine.Operation{}
		for _, op := range h {
			id := int(op.Input.(jobInput).ID)
			by[id] = append(by[id], op)
		}
		return sortedParts(by)
	},
	Init: func() any { return jobAbsent },
	Step: jobStep,
	DescribeOperation: func(input, output any) string {
		in, out := input.(jobInput), output.(jobOutput)
		switch {
		case out.Ambiguous:
			return fmt.Sprintf("%s(%d) -> ?", in.Kind, in.ID)
		case in.Kind == jobStop:
			return fmt.Sprintf("stop(%d) -> %d", in.ID, out.Stopped)
		case out.NotFound:
			return fmt.Sprintf("get(%d) -> not found", in.ID)
		}
		return fmt.Sprintf("%s(%d) -> %s", in.Kind, in.ID, strings.TrimPrefix(out.State.String(), "JOB_STATE_"))
	},
	DescribeState: func(state any) string {
		return [...]string{"absent", "running", "ended", "succeeded", "failed", "cancelled"}[state.(jobPhase)]
	},
}

func sortedParts(by map[int][]porcupine.Operation) [][]porcupine.Operation {
	keys := make([]int, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	out := make([][]porcupine.Operation, 0, len(keys))
	for _, k := range keys {
		out = append(out, by[k])
	}
	return out
}
