package main

import (
	"testing"

	"github.com/cairnhq/cairn/master"
)

func TestJoinSelf(t *testing.T) {
	first := master.Config{APIAdvertise: "m-0.m:7700", Join: "m-0.m:7700"}
	if !joinSelf(&first) || !first.Bootstrap || first.Join != "" {
		t.Fatalf("the first pod: %+v", first)
	}
	other := master.Config{APIAdvertise: "m-1.m:7700", Join: "m-0.m:7700"}
	if joinSelf(&other) || other.Bootstrap || other.Join != "m-0.m:7700" {
		t.Fatalf("another pod: %+v", other)
	}
	none := master.Config{Join: "m-0.m:7700"}
	if joinSelf(&none) || none.Bootstrap {
		t.Fatalf("no --api-advertise: %+v", none)
	}
}
