package master

import (
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnhq/cairn/fsm"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// Every Refusal is numbered as the Connect code it stands for, so that a
// worker turns it into that code with a cast, and every state machine
// code maps to one.
func TestRefusalsAreConnectCodes(t *testing.T) {
	t.Parallel()
	for num, name := range cairnv1.Refusal_name {
		if num == 0 {
			continue
		}
		want := strings.ToLower(strings.TrimPrefix(name, "REFUSAL_"))
		if got := connect.Code(num).String(); got != want {
			t.Errorf("%s is %d, which is Connect's %s", name, num, got)
		}
	}
	for _, c := range []fsm.Code{fsm.InvalidArgument, fsm.NotFound, fsm.FailedPrecondition} {
		if _, ok := cairnv1.Refusal_name[int32(connectCode(c))]; !ok {
			t.Errorf("state machine code %v answers %v, which no Refusal names", c, connectCode(c))
		}
	}
}

func TestReportedOutcomes(t *testing.T) {
	t.Parallel()
	m := &Master{}
	m.metrics = newMetrics(m, prometheus.NewRegistry())
	s := &leaseService{m: m}
	task := &cairnv1.Task{JobId: 7, Index: 1}
	for _, tc := range []struct {
		name    string
		r       fsm.Result
		outcome cairnv1.ReportOutcome
		refusal cairnv1.Refusal
		counted bool
	}{
		{"counted", fsm.Result{Record: task}, cairnv1.ReportOutcome_REPORT_OUTCOME_COUNTED, 0, true},
		{"repeat", fsm.Result{Repeat: true, Record: task}, cairnv1.ReportOutcome_REPORT_OUTCOME_REPEAT, 0, false},
		{"stale lease", fsm.Result{Stale: true, Record: task}, cairnv1.ReportOutcome_REPORT_OUTCOME_STALE_LEASE, 0, true},
		{"not granted", fsm.Result{Code: fsm.FailedPrecondition, Message: "never granted"}, cairnv1.ReportOutcome_REPORT_OUTCOME_REFUSED, cairnv1.Refusal_REFUSAL_FAILED_PRECONDITION, false},
		{"no task", fsm.Result{Code: fsm.NotFound, Message: "no job"}, cairnv1.ReportOutcome_REPORT_OUTCOME_REFUSED, cairnv1.Refusal_REFUSAL_NOT_FOUND, false},
		{"malformed", fsm.Result{Code: fsm.InvalidArgument, Message: "bad"}, cairnv1.ReportOutcome_REPORT_OUTCOME_REFUSED, cairnv1.Refusal_REFUSAL_INVALID_ARGUMENT, false},
	} {
		got := s.reported(tc.r)
		if got.GetOutcome() != tc.outcome || got.GetRefusal() != tc.refusal || got.GetCounted() != tc.counted || got.GetMessage() != tc.r.Message {
			t.Errorf("%s: %v, want outcome %v refusal %v counted %t", tc.name, got, tc.outcome, tc.refusal, tc.counted)
		}
		if tc.r.Record != nil && got.GetTask() != task {
			t.Errorf("%s: the task is not the result's record", tc.name)
		}
	}
}
