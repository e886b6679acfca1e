package journal

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// serveForward answers one follower's forward connection. Every master
// serves them; one that does not lead refuses each request, having run
// nothing.
func (j *Journal) serveForward(c net.Conn) {
	defer c.Close()
	select {
	case <-j.ready:
	case <-j.stop:
		return
	}
	br := bufio.NewReaderSize(c, 64<<10)
	c.SetDeadline(time.Now().Add(forwardDialTimeout))
	hello, err := readHello(br)
	if err == nil {
		err = j.admit(hello)
	}
	if err != nil {
		j.log.Warn("refused a forward connection", "remote", c.RemoteAddr().String(), "node", hello.nodeID, "err", err)
		c.Write(append([]byte{1}, appendString(nil, err.Error())...))
		return
	}
	if _, err := c.Write([]byte{0}); err != nil {
		return
	}
	c.SetDeadline(time.Time{})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-j.stop:
		case <-ctx.Done():
		}
		c.Close() // ends the read loop below
	}()
	out := make(chan []byte, 1024)
	go func() {
		if err := writeFrames(c, out, ctx.Done()); err != nil {
			cancel()
		}
	}()
	var mu sync.Mutex
	running := map[uint64]context.CancelFunc{} // by request id, for cancels
	slots := make(chan struct{}, maxForwardInflight)
	var buf []byte
	for {
		body, err := readFrame(br, buf)
		if err != nil {
			return
		}
		buf = body
		req, err := decodeRequest(body)
		if err != nil {
			j.log.Warn("closing a forward connection after a malformed request", "node", hello.nodeID, "err", err)
			return
		}
		if req.kind == kindCancel {
			mu.Lock()
			if stop, ok := running[req.id]; ok {
				stop()
			}
			mu.Unlock()
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wait := maxForwardWait
		if req.timeoutMS > 0 && time.Duration(req.timeoutMS)*time.Millisecond < wait {
			wait = time.Duration(req.timeoutMS) * time.Millisecond
		}
		rctx, rcancel := context.WithTimeout(ctx, wait)
		mu.Lock()
		running[req.id] = rcancel
		mu.Unlock()
		go func() {
			defer func() {
				mu.Lock()
				delete(running, req.id)
				mu.Unlock()
				rcancel()
				<-slots
			}()
			a := j.answer(rctx, req)
			select {
			case out <- encodeAnswer(a):
			case <-ctx.Done():
			}
		}()
	}
}

// admit checks a forwarder's hello: it must name a member of the raft
// configuration, of this cluster.
func (j *Journal) admit(h forwardHello) error {
	if mine := j.machine.ClusterID(); mine != "" && h.clusterID != "" && mine != h.clusterID {
		return fmt.Errorf("master %s is in cluster %s, this master in cluster %s", h.nodeID, h.clusterID, mine)
	}
	f := j.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("read the raft configuration: %w", err)
	}
	if !slices.ContainsFunc(f.Configuration().Servers, func(s raft.Server) bool { return string(s.ID) == h.nodeID }) {
		return fmt.Errorf("%q is not a member of this cluster's raft configuration", h.nodeID)
	}
	return nil
}

// answer runs one forwarded request on this node, if it leads.
func (j *Journal) answer(ctx context.Context, req forwardRequest) forwardAnswer {
	a := forwardAnswer{id: req.id}
	if !j.IsLeader() {
		a.status, a.message = statusRefused, ErrNotLeader.Error()
		return a
	}
	switch req.kind {
	case kindReadIndex:
		idx, err := j.leaderReadIndex(ctx)
		switch {
		case err == nil:
			a.body = binary.AppendUvarint(nil, idx)
		case Refused(err):
			a.status, a.message = statusRefused, err.Error()
		default:
			a.status, a.message = statusFailed, err.Error()
		}
		return a
	}
	h := j.calls.Load()
	if h == nil {
		a.status, a.message = statusFailed, "this master takes no forwarded calls yet (it is starting)"
		return a
	}
	body, err := (*h)(ctx, req.call)
	j.metrics.forwardServed.Inc()
	if err == nil {
		a.body = body
		return a
	}
	a.status, a.message = statusError, err.Error()
	if ce := (*CallError)(nil); errors.As(err, &ce) {
		a.code, a.message = ce.Code, ce.Message
	}
	return a
}

// writeFrames writes the bodies that arrive on out as frames, flushing when
// nothing more is waiting (or after forwardWriteBurst frames), until done
// closes or a write fails.
func writeFrames(c net.Conn, out <-chan []byte, done <-chan struct{}) error {
	bw := bufio.NewWriterSize(c, 64<<10)
	for {
		var f []byte
		select {
		case f = <-out:
		case <-done:
			return nil
		}
		yielded := false
		for n := 0; ; n++ {
			if err := writeFrame(bw, f); err != nil {
				return err
			}
			if n == forwardWriteBurst {
				break
			}
			select {
			case f = <-out:
				continue
			default:
			}
			if !yielded {
				// Let goroutines that are about to queue a frame (the
				// sender that woke us is usually one of many) run
				// first, so one write carries them all. With nothing
				// else runnable this returns at once.
				yielded = true
				runtime.Gosched()
				select {
				case f = <-out:
					continue
				default:
				}
			}
			break
		}
		if err := bw.Flush(); err != nil {
			return err
		}
	}
}
