package placement

import (
	"fmt"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// FromClusterMap builds the placement map of a journaled cluster map: its
// workers weighted by capacity, and its replication factor.
func FromClusterMap(cm *cairnv1.ClusterMap) (*Map, error) {
	ws := make([]Worker, len(cm.GetWorkers()))
	for i, w := range cm.GetWorkers() {
		ws[i] = Worker{ID: w.GetId(), Weight: max(w.GetCapacityBytes(), 1)}
	}
	m, err := New(ws, int(max(cm.GetReplication(), 1)))
	if err != nil {
		return nil, fmt.Errorf("placement for epoch %d: %w", cm.GetEpoch(), err)
	}
	return m, nil
}
