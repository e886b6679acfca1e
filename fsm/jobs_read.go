package fsm

import (
	"strconv"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/types/known/durationpb"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// Job returns a job and whether it exists.
func (m *Machine) Job(id uint64) (*cairnv1.Job, bool, error) {
	j := &cairnv1.Job{}
	var found bool
	err := m.read(func(r pebble.Reader) error {
		var err error
		found, err = getProto(r, jobKey(id), j)
		return err
	})
	return j, found, err
}

// Tasks returns a job's tasks in index order.
func (m *Machine) Tasks(job uint64) ([]*cairnv1.Task, error) {
	var out []*cairnv1.Task
	err := m.read(func(r pebble.Reader) error {
		return scanProto(r, tasksPrefix(job), func() *cairnv1.Task { return &cairnv1.Task{} },
			func(tk *cairnv1.Task) bool { out = append(out, tk); return true })
	})
	return out, err
}

// ListJobs returns up to limit jobs with ids below before (0: from the
// newest), newest first, that match kind and state (unspecified matches
// all), and the id to pass as before for the next page (0 when there is
// none).
func (m *Machine) ListJobs(kind cairnv1.JobKind, state cairnv1.JobState, before uint64, limit int) ([]*cairnv1.Job, uint64, error) {
	if limit <= 0 {
		limit = 100
	}
	var out []*cairnv1.Job
	var next uint64
	err := m.read(func(r pebble.Reader) error {
		upper := prefixEnd(prefixJob)
		if before != 0 {
			upper = jobKey(before)
		}
		it, err := r.NewIter(&pebble.IterOptions{LowerBound: prefixJob, UpperBound: upper})
		if err != nil {
			return err
		}
		defer it.Close()
		for valid := it.Last(); valid; valid = it.Prev() {
			j := &cairnv1.Job{}
			if err := unmarshalValue(it, j); err != nil {
				return err
			}
			if (kind != 0 && j.GetSpec().GetKind() != kind) || (state != 0 && j.GetState() != state) {
				continue
			}
			if len(out) == limit {
				next = out[len(out)-1].GetId()
				break
			}
			out = append(out, j)
		}
		return it.Error()
	})
	return out, next, err
}

// RunningJobs returns the running jobs of a kind, oldest first.
func (m *Machine) RunningJobs(kind cairnv1.JobKind) ([]*cairnv1.Job, error) {
	var out []*cairnv1.Job
	err := m.read(func(r pebble.Reader) error {
		p := runningPrefix(kind)
		return scan(r, p, func(k, _ []byte) (bool, error) {
			j := &cairnv1.Job{}
			found, err := getProto(r, jobKey(u64(k[len(p):])), j)
			if found {
				out = append(out, j)
			}
			return err == nil, err
		})
	})
	return out, err
}

// RunningJob returns the running job with a dedup key, if any.
func (m *Machine) RunningJob(key string) (*cairnv1.Job, bool, error) {
	j := &cairnv1.Job{}
	var found bool
	err := m.read(func(r pebble.Reader) error {
		id, err := getRaw(r, dedupKey(key))
		if err != nil || id == nil {
			return err
		}
		found, err = getProto(r, jobKey(u64(id)), j)
		return err
	})
	return j, found, err
}

// Task returns one task and whether it exists.
func (m *Machine) Task(job uint64, index uint32) (*cairnv1.Task, bool, error) {
	tk := &cairnv1.Task{}
	var found bool
	err := m.read(func(r pebble.Reader) error {
		var err error
		found, err = getProto(r, taskKey(job, index), tk)
		return err
	})
	return tk, found, err
}

// Settings returns the job controllers' settings, with defaults for those
// never set.
func (m *Machine) Settings() (*cairnv1.Settings, error) {
	s := &cairnv1.Settings{RebalanceEnabled: true, CleanupAuto: true, PartialCaching: true}
	retention := DefaultJobRetention
	err := m.read(func(r pebble.Reader) error {
		if v, err := getRaw(r, settingKey(SettingRebalanceEnabled)); err != nil {
			return err
		} else if v != nil {
			s.RebalanceEnabled, _ = strconv.ParseBool(string(v))
		}
		if v, err := getRaw(r, settingKey(SettingCleanupAuto)); err != nil {
			return err
		} else if v != nil {
			s.CleanupAuto, _ = strconv.ParseBool(string(v))
		}
		if v, err := getRaw(r, settingKey(SettingPartialCaching)); err != nil {
			return err
		} else if v != nil {
			s.PartialCaching, _ = strconv.ParseBool(string(v))
		}
		v, err := getRaw(r, settingKey(SettingDontCleanupTime))
		if err != nil {
			return err
		}
		s.DontCleanupTime = durationpb.New(dontCleanupTime(v))
		if v, err := getRaw(r, settingKey(SettingJobRetention)); err != nil {
			return err
		} else if v != nil {
			if d, err := time.ParseDuration(string(v)); err == nil {
				retention = d
			}
		}
		return nil
	})
	s.JobRetention = durationpb.New(retention)
	return s, err
}

// LastRebalanceEpoch is the newest epoch a rebalance was started for (0:
// none yet).
func (m *Machine) LastRebalanceEpoch() (uint64, error) {
	var v []byte
	err := m.read(func(r pebble.Reader) error {
		var err error
		v, err = getRaw(r, keyRebalanceEpoch)
		return err
	})
	return u64(v), err
}

// HasEndedBefore reports whether some finished job ended before t.
func (m *Machine) HasEndedBefore(t time.Time) (bool, error) {
	found := false
	err := m.read(func(r pebble.Reader) error {
		it, err := r.NewIter(&pebble.IterOptions{LowerBound: prefixEnded, UpperBound: endedKey(t.UnixNano(), 0)})
		if err != nil {
			return err
		}
		found = it.First()
		return it.Close()
	})
	return found, err
}

// LastJobID is the highest job id handed out as this machine has applied
// the journal.
func (m *Machine) LastJobID() (uint64, error) {
	var v []byte
	err := m.read(func(r pebble.Reader) error {
		var err error
		v, err = getRaw(r, keyJobSeq)
		return err
	})
	return u64(v), err
}
