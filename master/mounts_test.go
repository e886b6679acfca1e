package master

import (
	"strings"
	"testing"

	"github.com/cairnhq/cairn/fsm"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// TestMountsToJournal: of the mounts a master's flags ask for, only those
// the journal lacks are proposed; a refused one is reported, not proposed
// again and again.
func TestMountsToJournal(t *testing.T) {
	t.Parallel()
	want := []*cairnv1.UfsMounted{{Path: "/", Uri: "file:///u", FromFlag: true}, {Path: "/c", CacheOnly: true}, {Path: "/bad", CacheOnly: true}}
	check := func(e *cairnv1.UfsMounted) (fsm.Result, error) {
		switch e.GetPath() {
		case "/":
			return fsm.Result{Code: fsm.OK, Repeat: true}, nil // in place, or an operator's / wins
		case "/bad":
			return fsm.Result{Code: fsm.FailedPrecondition, Message: "conflicts"}, nil
		}
		return fsm.Result{Code: fsm.OK}, nil
	}
	props, refused, err := mountsToJournal(want, check)
	if err != nil || len(props) != 1 || props[0].GetPath() != "/c" {
		t.Fatalf("proposed %v, %v", props, err)
	}
	if len(refused) != 1 || !strings.Contains(refused[0].Error(), "mount /bad: conflicts") {
		t.Fatalf("refused %v", refused)
	}
}
