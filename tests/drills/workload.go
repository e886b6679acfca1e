package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/anishathalye/porcupine"
	"github.com/cespare/xxhash/v2"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairnhq/cairn/apiserver"
	"github.com/cairnhq/cairn/auth"
	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/journal"
	"github.com/cairnhq/cairn/placement"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

// op is one call of the workload as it went, for throughput and for the
// per-master checks (which master acknowledged what, and when).
type op struct {
	Client    int    `json:"client"`
	Master    string `json:"master"`
	What      string `json:"what"`
	Write     bool   `json:"write,omitempty"`
	Call      int64  `json:"call"`   // ns since the drill began
	Return    int64  `json:"return"` // ns since the drill began
	OK        bool   `json:"ok,omitempty"`
	Ambiguous bool   `json:"ambiguous,omitempty"`
	Err       string `json:"err,omitempty"`
	// A put's path, the version its CreateFile gave, and when its bytes
	// first went to a worker (0: they never did).
	Path    string `json:"path,omitempty"`
	Pending uint64 `json:"pending,omitempty"`
	Sent    int64  `json:"sent,omitempty"`
	Sum     uint64 `json:"sum,omitempty"` // the XXH64 of what a put wrote
}

// history is everything the workload's clients did: every call with its
// invoke and return time (on one monotonic clock), input and output.
type history struct {
	start    time.Time
	mu       sync.Mutex
	ns, jobs []porcupine.Operation
	ops      []op
	contents map[uint64][]byte // what each put wrote, by its XXH64
}

func newHistory() *history {
	return &history{start: time.Now(), contents: map[uint64][]byte{}}
}

func (h *history) now() int64 { return int64(time.Since(h.start)) }

// at is the history's clock for a wall-clock instant.
func (h *history) at(t time.Time) int64 { return int64(t.Sub(h.start)) }

func (h *history) record(o op, nsOp, jobOp *porcupine.Operation) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, o)
	if nsOp != nil {
		h.ns = append(h.ns, *nsOp)
	}
	if jobOp != nil {
		h.jobs = append(h.jobs, *jobOp)
	}
}

// ambiguous reports whether a failed call may still have taken effect:
// anything but a refusal the server made before acting on the call, a
// connection that could not be made, or a master's answer that no leader
// ran it (journal.ErrNoLeader: every try to reach a leader failed before
// the call left the master; or a leader that had just stepped down
// refused it unrun).
func ambiguous(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return false
	}
	switch connect.CodeOf(err) {
	case connect.CodeInvalidArgument, connect.CodeNotFound, connect.CodeAlreadyExists, connect.CodePermissionDenied,
		connect.CodeUnauthenticated, connect.CodeFailedPrecondition, connect.CodeResourceExhausted,
		connect.CodeOutOfRange, connect.CodeUnimplemented:
		return false
	case connect.CodeUnavailable:
		msg := err.Error()
		return !strings.Contains(msg, journal.ErrNoLeader.Error()) && !strings.Contains(msg, "stopped leading before the write was made")
	}
	return true
}

// workload is the drills' clients: each picks a master at random for each
// call and makes it once, through that master only.
type workload struct {
	c       *cluster
	h       *history
	clients int
	dirs    int
	stop    chan struct{}
	wg      sync.WaitGroup
	data    *http.Client
	timeout time.Duration
}

func newWorkload(c *cluster, h *history, clients, dirs int) *workload {
	return &workload{c: c, h: h, clients: clients, dirs: dirs, stop: make(chan struct{}), timeout: 6 * time.Second,
		data: &http.Client{Transport: auth.Transport(c.admin, apiserver.HTTP1Transport())}}
}

func filePath(dir, file int) string { return fmt.Sprintf("/h/d%02d/f%d", dir, file) }

// run starts the clients; halt stops them.
func (w *workload) run(seed uint64) {
	for id := range w.clients {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.loop(id, rand.New(rand.NewPCG(seed, uint64(id))))
		}()
	}
}

func (w *workload) halt() {
	close(w.stop)
	w.wg.Wait()
}

type session struct {
	w       *workload
	id      int
	rng     *rand.Rand
	masters map[string]client.Services
	workers map[string]cairnv1connect.DataServiceClient
	jobs    []uint64
	seq     int
	// failed is when a call through each master last failed as if the
	// master were unreachable: like the SDK, which moves on to the next
	// master, a session leaves such a master alone for a second.
	failed map[string]time.Time
}

func (w *workload) session(id int, rng *rand.Rand) *session {
	s := &session{w: w, id: id, rng: rng, masters: map[string]client.Services{}, workers: map[string]cairnv1connect.DataServiceClient{}, failed: map[string]time.Time{}}
	for _, m := range w.c.masters {
		s.masters[m] = w.c.one(m)
	}
	return s
}

func (w *workload) loop(id int, rng *rand.Rand) {
	s := w.session(id, rng)
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		m := s.pick()
		dir, file := rng.IntN(w.dirs), rng.IntN(filesPerDir)
		switch r := rng.IntN(100); {
		case r < 35:
			s.put(m, dir, file)
		case r < 60:
			s.get(m, dir, file)
		case r < 70:
			s.list(m, dir)
		case r < 80:
			s.delete(m, dir, file)
		case r < 88 || len(s.jobs) == 0:
			s.startJob(m)
		case r < 95:
			s.getJob(m, s.jobs[rng.IntN(len(s.jobs))])
		default:
			s.stopJob(m, s.jobs[rng.IntN(len(s.jobs))])
		}
	}
}

// pick chooses a master at random among those that did not fail this
// session in the last second (among all, when every one did).
func (s *session) pick() string {
	var ok []string
	for _, m := range s.w.c.masters {
		if time.Since(s.failed[m]) > time.Second {
			ok = append(ok, m)
		}
	}
	if len(ok) == 0 {
		// Every master failed a moment ago (a whole-cluster restart): wait
		// a little rather than pile up calls that cannot be answered.
		time.Sleep(100 * time.Millisecond)
		ok = s.w.c.masters
	}
	return ok[s.rng.IntN(len(ok))]
}

func (s *session) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.w.timeout)
}

// content is what the session's next put writes: bytes of its own.
func (s *session) content() []byte {
	s.seq++
	n := 256 + s.rng.IntN(3840)
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(s.id)<<32|uint64(s.seq), 99))
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for k := 0; k < 8 && i+k < n; k++ {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	return b
}

func (s *session) finish(o op, err error) op {
	o.Return = s.w.h.now()
	o.OK = err == nil
	if err != nil {
		o.Err = err.Error()
		o.Ambiguous = ambiguous(err)
		if o.Ambiguous {
			s.failed[o.Master] = time.Now()
		}
	}
	return o
}

func (s *session) put(m string, dir, file int) {
	data := s.content()
	sum := xxhash.Sum64(data)
	s.w.h.mu.Lock()
	s.w.h.contents[sum] = data
	s.w.h.mu.Unlock()
	ctx, cancel := s.ctx()
	defer cancel()
	o := op{Client: s.id, Master: m, What: "put", Write: true, Call: s.w.h.now(), Path: filePath(dir, file), Sum: sum}
	version, applied, err := s.write(ctx, s.masters[m], &o, data, sum)
	o = s.finish(o, err)
	// Only the complete can publish the version: a put that failed
	// before it did nothing a reader can see.
	o.Ambiguous = err != nil && applied && ambiguous(err)
	if err != nil && !o.Ambiguous {
		s.w.h.record(o, nil, nil)
		return
	}
	out := nsOutput{Version: version, Ambiguous: o.Ambiguous}
	ret := o.Return
	if o.Ambiguous {
		ret = math.MaxInt64
	}
	s.w.h.record(o, &porcupine.Operation{ClientId: s.id, Input: nsInput{Kind: nsPut, Dir: dir, File: file, Sum: sum}, Call: o.Call, Output: out, Return: ret, Metadata: m}, nil)
}

// write is a put through one master: CreateFile, the bytes to the primary
// owner, which writes them to the UFS (THROUGH), CompleteFile. The
// workload's files are never cached, so no rebalance or cleanup moves them,
// and the jobs' counters can be held against the drills' own files alone.
// completing says whether the call that failed was CompleteFile.
func (s *session) write(ctx context.Context, ms client.Services, o *op, data []byte, sum uint64) (version uint64, completing bool, err error) {
	path := o.Path
	cr, err := ms.Namespace.CreateFile(ctx, connect.NewRequest(&cairnv1.CreateFileRequest{
		Path: path, WriteType: cairnv1.WriteType_WRITE_TYPE_THROUGH, Overwrite: true}))
	if err != nil {
		return 0, false, err
	}
	pw := cr.Msg.GetWrite()
	o.Pending = pw.GetVersion()
	mr, err := ms.Cluster.GetClusterMap(ctx, connect.NewRequest(&cairnv1.GetClusterMapRequest{}))
	if err != nil {
		return 0, false, err
	}
	cm := mr.Msg.GetMap()
	pm, err := placement.FromClusterMap(cm)
	if err != nil {
		return 0, false, err
	}
	primary := pm.OwnerIDs(path)[0]
	var addr string
	for _, wk := range cm.GetWorkers() {
		if wk.GetId() == primary {
			addr = wk.GetAddress()
		}
	}
	o.Sent = s.w.h.now()
	ufsMtime, err := s.send(ctx, addr, pw, data, sum)
	if err != nil {
		return 0, false, fmt.Errorf("worker %s: %w", primary, err)
	}
	cf, err := ms.Namespace.CompleteFile(ctx, connect.NewRequest(&cairnv1.CompleteFileRequest{
		Path: path, Version: pw.GetVersion(), Length: uint64(len(data)), Checksum: sum, UfsMtime: ufsMtime}))
	if err != nil {
		return 0, true, err
	}
	return cf.Msg.GetFile().GetVersion(), true, nil
}

func (s *session) dataClient(addr string) cairnv1connect.DataServiceClient {
	ds, ok := s.workers[addr]
	if !ok {
		ds = cairnv1connect.NewDataServiceClient(s.w.data, "http://"+addr)
		s.workers[addr] = ds
	}
	return ds
}

func (s *session) send(ctx context.Context, addr string, pw *cairnv1.PendingWrite, data []byte, sum uint64) (*timestamppb.Timestamp, error) {
	st := s.dataClient(addr).Write(ctx)
	header := &cairnv1.WriteHeader{
		Identity:  &cairnv1.FileIdentity{Path: pw.GetPath(), Version: pw.GetVersion(), Length: uint64(len(data))},
		WriteType: pw.GetWriteType(), Pinned: pw.GetPinned(), ChecksumLast: true, Through: true, NoCache: true,
	}
	for _, req := range []*cairnv1.WriteRequest{
		{Part: &cairnv1.WriteRequest_Header{Header: header}},
		{Part: &cairnv1.WriteRequest_Chunk{Chunk: data}},
		{Part: &cairnv1.WriteRequest_Checksum{Checksum: sum}},
	} {
		if err := st.Send(req); err != nil {
			if _, rerr := st.CloseAndReceive(); rerr != nil {
				return nil, rerr
			}
			return nil, err
		}
	}
	resp, err := st.CloseAndReceive()
	if err != nil {
		return nil, err
	}
	return resp.Msg.GetUfsMtime(), nil
}

func (s *session) get(m string, dir, file int) {
	ctx, cancel := s.ctx()
	defer cancel()
	o := op{Client: s.id, Master: m, What: "get", Call: s.w.h.now()}
	r, err := s.masters[m].Namespace.GetFile(ctx, connect.NewRequest(&cairnv1.GetFileRequest{Path: filePath(dir, file)}))
	var out nsOutput
	switch {
	case err == nil:
		f := r.Msg.GetFile()
		out.Entry = entry{Present: true, Sum: f.GetChecksum(), Version: f.GetVersion()}
	case connect.CodeOf(err) == connect.CodeNotFound:
		err = nil
	}
	o = s.finish(o, err)
	if err != nil {
		s.w.h.record(o, nil, nil)
		return
	}
	s.w.h.record(o, &porcupine.Operation{ClientId: s.id, Input: nsInput{Kind: nsGet, Dir: dir, File: file}, Call: o.Call, Output: out, Return: o.Return, Metadata: m}, nil)
}

func (s *session) list(m string, dir int) {
	ctx, cancel := s.ctx()
	defer cancel()
	o := op{Client: s.id, Master: m, What: "list", Call: s.w.h.now()}
	prefix := fmt.Sprintf("/h/d%02d", dir)
	r, err := s.masters[m].Namespace.ListFiles(ctx, connect.NewRequest(&cairnv1.ListFilesRequest{Prefix: prefix}))
	var out nsOutput
	if err == nil {
		for _, f := range r.Msg.GetFiles() {
			i, perr := strconv.Atoi(strings.TrimPrefix(f.GetPath(), prefix+"/f"))
			if perr != nil || i < 0 || i >= filesPerDir {
				err = fmt.Errorf("list %s: unexpected file %s", prefix, f.GetPath())
				break
			}
			out.List[i] = entry{Present: true, Sum: f.GetChecksum(), Version: f.GetVersion()}
		}
	}
	o = s.finish(o, err)
	if err != nil {
		s.w.h.record(o, nil, nil)
		return
	}
	s.w.h.record(o, &porcupine.Operation{ClientId: s.id, Input: nsInput{Kind: nsList, Dir: dir}, Call: o.Call, Output: out, Return: o.Return, Metadata: m}, nil)
}

func (s *session) delete(m string, dir, file int) {
	ctx, cancel := s.ctx()
	defer cancel()
	o := op{Client: s.id, Master: m, What: "delete", Write: true, Call: s.w.h.now()}
	r, err := s.masters[m].Namespace.DeleteFile(ctx, connect.NewRequest(&cairnv1.DeleteFileRequest{Path: filePath(dir, file)}))
	var out nsOutput
	switch {
	case err == nil:
		out.Deleted = r.Msg.GetDeleted()
	case connect.CodeOf(err) == connect.CodeNotFound:
		err = nil
	}
	o = s.finish(o, err)
	if err != nil && !o.Ambiguous {
		s.w.h.record(o, nil, nil)
		return
	}
	ret := o.Return
	if o.Ambiguous {
		out.Ambiguous, ret = true, math.MaxInt64
	}
	s.w.h.record(o, &porcupine.Operation{ClientId: s.id, Input: nsInput{Kind: nsDelete, Dir: dir, File: file}, Call: o.Call, Output: out, Return: ret, Metadata: m}, nil)
}

func (s *session) startJob(m string) {
	ctx, cancel := s.ctx()
	defer cancel()
	s.seq++
	o := op{Client: s.id, Master: m, What: "start", Write: true, Call: s.w.h.now()}
	r, err := s.masters[m].Jobs.StartJob(ctx, connect.NewRequest(&cairnv1.StartJobRequest{Spec: &cairnv1.JobSpec{
		Kind: cairnv1.JobKind_JOB_KIND_FREE, Prefix: fmt.Sprintf("/jobs/c%d/%d", s.id, s.seq)}}))
	o = s.finish(o, err)
	if err != nil {
		// An ambiguous start may have made a job nobody will ask about:
		// it cannot be placed in a job's partition, and needs not be.
		s.w.h.record(o, nil, nil)
		return
	}
	j := r.Msg.GetJob()
	s.jobs = append(s.jobs, j.GetId())
	s.w.h.record(o, nil, &porcupine.Operation{ClientId: s.id, Input: jobInput{Kind: jobStart, ID: j.GetId()}, Call: o.Call,
		Output: jobOutput{Created: r.Msg.GetCreated(), State: j.GetState()}, Return: o.Return, Metadata: m})
}

func (s *session) getJob(m string, id uint64) {
	ctx, cancel := s.ctx()
	defer cancel()
	o := op{Client: s.id, Master: m, What: "get-job", Call: s.w.h.now()}
	r, err := s.masters[m].Jobs.GetJob(ctx, connect.NewRequest(&cairnv1.GetJobRequest{Id: id}))
	var out jobOutput
	switch {
	case err == nil:
		out.State = r.Msg.GetJob().GetState()
	case connect.CodeOf(err) == connect.CodeNotFound:
		out.NotFound, err = true, nil
	}
	o = s.finish(o, err)
	if err != nil {
		s.w.h.record(o, nil, nil)
		return
	}
	s.w.h.record(o, nil, &porcupine.Operation{ClientId: s.id, Input: jobInput{Kind: jobGet, ID: id}, Call: o.Call, Output: out, Return: o.Return, Metadata: m})
}

func (s *session) stopJob(m string, id uint64) {
	ctx, cancel := s.ctx()
	defer cancel()
	o := op{Client: s.id, Master: m, What: "stop", Write: true, Call: s.w.h.now()}
	r, err := s.masters[m].Jobs.StopJob(ctx, connect.NewRequest(&cairnv1.StopJobRequest{Id: id, Reason: "drill"}))
	o = s.finish(o, err)
	if err != nil && !o.Ambiguous {
		s.w.h.record(o, nil, nil)
		return
	}
	out, ret := jobOutput{}, o.Return
	if err == nil {
		out.Stopped = r.Msg.GetStopped()
	} else {
		out.Ambiguous, ret = true, math.MaxInt64
	}
	s.w.h.record(o, nil, &porcupine.Operation{ClientId: s.id, Input: jobInput{Kind: jobStop, ID: id}, Call: o.Call, Output: out, Return: ret, Metadata: m})
}

// final reads everything the workload touched once more, through every
// master in turn, once the cluster is whole again: every folder listed,
// every file and every job read. These reads join the history, so an
// acknowledged write that was lost fails the check. It returns the files
// the final reads found.
func (w *workload) final(ctx context.Context) (map[string]entry, error) {
	s := w.session(w.clients, rand.New(rand.NewPCG(1, 1)))
	w.h.mu.Lock()
	var jobs []uint64
	for _, o := range w.h.jobs {
		if in := o.Input.(jobInput); in.Kind == jobStart {
			jobs = append(jobs, in.ID)
		}
	}
	w.h.mu.Unlock()
	// try makes a read through one master after another until one is
	// recorded (a failed read is not), and returns what it read. A master
	// whose call timed out in the last 5s is passed over while another is
	// left, so that a master that is down at the end (a failed drill) costs
	// a timeout now and then, not on every third read.
	n := 0
	next := func() string {
		for range w.c.masters {
			n++
			if m := w.c.masters[n%len(w.c.masters)]; time.Since(s.failed[m]) > 5*time.Second {
				return m
			}
		}
		return w.c.masters[n%len(w.c.masters)]
	}
	try := func(what string, nsRead bool, read func(m string)) (porcupine.Operation, error) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			w.h.mu.Lock()
			before := len(w.h.ns) + len(w.h.jobs)
			w.h.mu.Unlock()
			read(next())
			w.h.mu.Lock()
			grew := len(w.h.ns)+len(w.h.jobs) > before
			var last porcupine.Operation
			if grew && nsRead {
				last = w.h.ns[len(w.h.ns)-1]
			}
			w.h.mu.Unlock()
			if grew {
				return last, nil
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return last, fmt.Errorf("the final %s failed through every master for 30s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	found := map[string]entry{}
	for dir := range w.dirs {
		if _, err := try(fmt.Sprintf("list of d%02d", dir), true, func(m string) { s.list(m, dir) }); err != nil {
			return nil, err
		}
		for file := range filesPerDir {
			o, err := try("get of "+filePath(dir, file), true, func(m string) { s.get(m, dir, file) })
			if err != nil {
				return nil, err
			}
			if e := o.Output.(nsOutput).Entry; e.Present {
				found[filePath(dir, file)] = e
			}
		}
	}
	for _, id := range jobs {
		if _, err := try(fmt.Sprintf("read of job %d", id), false, func(m string) { s.getJob(m, id) }); err != nil {
			return nil, err
		}
	}
	return found, nil
}
