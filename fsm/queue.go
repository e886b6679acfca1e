package fsm

import (
	"bytes"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/cairnhq/cairn/jobs"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// PendingTasks returns up to limit PENDING tasks that worker may lease at
// now — its own first, then tasks for any worker; not those backing off
// after a failed attempt — of the given kinds (all when empty), each with
// its job, leaving out those skip (if set) names and those want (if set)
// refuses, given their job's kind and spec path (read from the queue
// entry, so that a refusal costs no read of the job). wantKey, when not
// empty, names want's verdicts for this worker and kinds: a scan of the
// any-worker queue then starts past the tasks an earlier scan with the
// same wantKey saw refused, so that a worker does not step over every
// other worker's tasks on each call. A caller must change wantKey
// whenever want could answer differently for a task it refused (for the
// owner filter: with each epoch).
func (m *Machine) PendingTasks(worker string, kinds []cairnv1.JobKind, limit int, now time.Time, skip func(job uint64, index uint32) bool, want func(kind cairnv1.JobKind, path string) bool, wantKey string) ([]*cairnv1.Task, []*cairnv1.Job, error) {
	var tasks []*cairnv1.Task
	var js []*cairnv1.Job
	err := m.read(func(r pebble.Reader) error {
		// load reads a task's job (once per call); nil when it is gone.
		cache := map[uint64]*cairnv1.Job{}
		load := func(id uint64) (*cairnv1.Job, error) {
			if j, ok := cache[id]; ok {
				return j, nil
			}
			j := &cairnv1.Job{}
			if found, err := getProto(r, jobKey(id), j); err != nil || !found {
				return nil, err
			}
			cache[id] = j
			return j, nil
		}
		for _, who := range []string{worker, ""} {
			p := queuedPrefix(who)
			from, gen := m.queueHints.get(who)
			fromBase := true
			mine := ""
			if who == "" && want != nil && wantKey != "" {
				mine = filtered(who, worker, wantKey)
				if f, _ := m.queueHints.get(mine); f != nil && (from == nil || bytes.Compare(f, from) > 0) {
					from, fromBase = f, false
				}
			}
			if from == nil {
				from = p
			}
			first, refusing := true, mine != ""
			// notRefused ends the run of refused keys at k: everything
			// before it was deleted or refused by want.
			notRefused := func(k []byte) {
				if refusing {
					m.queueHints.set(mine, gen, k)
					refusing = false
				}
			}
			err := scanFrom(r, from, prefixEnd(p), func(k, v []byte) (bool, error) {
				if first && fromBase {
					m.queueHints.set(who, gen, k)
				}
				first = false
				ref := refOf(k[len(p):])
				id, idx := ref.job, ref.index
				if skip != nil && skip(id, idx) {
					notRefused(k)
					return true, nil
				}
				var j *cairnv1.Job
				kind, path, ok := decodeQueued(v)
				if !ok {
					var err error
					if j, err = load(id); err != nil || j == nil {
						notRefused(k)
						return err == nil, err
					}
					kind, path = j.GetSpec().GetKind(), j.GetSpec().GetPath()
				}
				if (len(kinds) > 0 && !kindIn(kind, kinds)) || (want != nil && !want(kind, path)) {
					return true, nil
				}
				notRefused(k)
				// The task first: one backing off costs no job read.
				tk := &cairnv1.Task{}
				if found, err := getProto(r, taskKey(id, idx), tk); err != nil || !found {
					return err == nil, err
				}
				if !jobs.Eligible(tk, now) {
					return true, nil
				}
				if j == nil {
					var err error
					if j, err = load(id); err != nil || j == nil {
						return err == nil, err
					}
				}
				tasks, js = append(tasks, tk), append(js, j)
				return len(tasks) < limit, nil
			})
			if err == nil && refusing {
				m.queueHints.set(mine, gen, prefixEnd(p)) // refused to the end
			}
			if err != nil || len(tasks) >= limit {
				return err
			}
		}
		return nil
	})
	return tasks, js, err
}

func kindIn(k cairnv1.JobKind, ks []cairnv1.JobKind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

// LeasedTasks returns every task under a live lease, in key order.
func (m *Machine) LeasedTasks() ([]*cairnv1.Task, error) {
	var out []*cairnv1.Task
	err := m.read(func(r pebble.Reader) error {
		return scan(r, prefixLeased, func(k, _ []byte) (bool, error) {
			ref := refOf(k[len(prefixLeased):])
			tk := &cairnv1.Task{}
			found, err := getProto(r, taskKey(ref.job, ref.index), tk)
			if found {
				out = append(out, tk)
			}
			return err == nil, err
		})
	})
	return out, err
}
