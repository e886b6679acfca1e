package journal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"

	"github.com/cairnhq/cairn/fsm"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// The forward protocol, spoken on the raft port (see mux.go):
//
//	hello    client → server: forwardMagic, forwardVersion,
//	         uvarint len + node id, uvarint len + cluster id
//	welcome  server → client: 0, or 1 + uvarint len + reason (then close)
//	frames   both ways: uvarint body length + body
//	request  body: uvarint id, uvarint timeout ms (0: none), EventBatch bytes
//	answer   body: uvarint id, status byte, then
//	         statusOK:   uvarint index, uvarint n, n × result
//	         otherwise:  uvarint len + message
//	result   uvarint code, uvarint epoch, uvarint value, repeat byte,
//	         uvarint len + message
//
// Requests are answered in any order; the id pairs them.

const (
	forwardVersion byte = 1
	// maxForwardFrame bounds one frame: an entry's worth of events and
	// room for the answer's messages.
	maxForwardFrame = maxEntryBytes + 64<<10
	// maxHelloString bounds the node and cluster ids in a hello.
	maxHelloString = 256
)

// Answer statuses.
const (
	statusOK byte = iota
	// statusRefused: the node was not the leader and proposed nothing;
	// the client may send the events elsewhere.
	statusRefused
	// statusLost: leadership moved or raft shut down after the events
	// were handed to raft; they may yet be committed.
	statusLost
	// statusDeadline: the request's time ran out on the leader.
	statusDeadline
	// statusFailed: any other error.
	statusFailed
)

type forwardHello struct {
	nodeID, clusterID string
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func encodeHello(h forwardHello) []byte {
	b := []byte{forwardMagic, forwardVersion}
	b = appendString(b, h.nodeID)
	return appendString(b, h.clusterID)
}

// readHello reads a hello whose magic byte the mux has already consumed.
func readHello(r *bufio.Reader) (forwardHello, error) {
	var h forwardHello
	v, err := r.ReadByte()
	if err != nil {
		return h, err
	}
	if v != forwardVersion {
		return h, fmt.Errorf("forward protocol version %d, this master speaks %d", v, forwardVersion)
	}
	if h.nodeID, err = readString(r, maxHelloString); err != nil {
		return h, fmt.Errorf("node id: %w", err)
	}
	if h.clusterID, err = readString(r, maxHelloString); err != nil {
		return h, fmt.Errorf("cluster id: %w", err)
	}
	return h, nil
}

func readString(r *bufio.Reader, limit int) (string, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return "", err
	}
	if n > uint64(limit) {
		return "", fmt.Errorf("%d bytes, more than %d", n, limit)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return string(b), nil
}

// writeFrame writes body behind its length.
func writeFrame(w *bufio.Writer, body []byte) error {
	var n [binary.MaxVarintLen64]byte
	if _, err := w.Write(n[:binary.PutUvarint(n[:], uint64(len(body)))]); err != nil {
		return err
	}
	_, err := w.Write(body)
	return err
}

// readFrame reads one frame's body, reusing buf when it is large enough.
func readFrame(r *bufio.Reader, buf []byte) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > maxForwardFrame {
		return nil, fmt.Errorf("frame of %d bytes, more than %d", n, maxForwardFrame)
	}
	if uint64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

type forwardRequest struct {
	id        uint64
	timeoutMS uint64
	events    []*cairnv1.Event
}

// encodeRequest returns a request's body (writeFrame frames it).
func encodeRequest(req forwardRequest) ([]byte, error) {
	batch := &cairnv1.EventBatch{Events: req.events}
	b := make([]byte, 0, 2*binary.MaxVarintLen64+proto.Size(batch))
	b = binary.AppendUvarint(b, req.id)
	b = binary.AppendUvarint(b, req.timeoutMS)
	b, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(b, batch)
	if err != nil {
		return nil, fmt.Errorf("encode forwarded events: %w", err)
	}
	return b, nil
}

// decodeRequest decodes a request body. The events own their memory: body
// may be reused after it returns.
func decodeRequest(body []byte) (forwardRequest, error) {
	var req forwardRequest
	var n int
	if req.id, n = binary.Uvarint(body); n <= 0 {
		return req, errors.New("request: bad id")
	}
	body = body[n:]
	if req.timeoutMS, n = binary.Uvarint(body); n <= 0 {
		return req, errors.New("request: bad timeout")
	}
	var batch cairnv1.EventBatch
	if err := proto.Unmarshal(body[n:], &batch); err != nil {
		return req, fmt.Errorf("request %d: events: %w", req.id, err)
	}
	if len(batch.Events) == 0 {
		return req, fmt.Errorf("request %d: no events", req.id)
	}
	req.events = batch.Events
	return req, nil
}

type forwardAnswer struct {
	id      uint64
	status  byte
	index   uint64
	results []fsm.Result
	message string
}

// encodeAnswer returns an answer's body (writeFrame frames it).
func encodeAnswer(a forwardAnswer) []byte {
	b := binary.AppendUvarint(make([]byte, 0, 32), a.id)
	b = append(b, a.status)
	if a.status != statusOK {
		return appendString(b, a.message)
	}
	b = binary.AppendUvarint(b, a.index)
	b = binary.AppendUvarint(b, uint64(len(a.results)))
	for _, r := range a.results {
		b = binary.AppendUvarint(b, uint64(r.Code))
		b = binary.AppendUvarint(b, r.Epoch)
		b = binary.AppendUvarint(b, r.Value)
		rep := byte(0)
		if r.Repeat {
			rep = 1
		}
		b = append(b, rep)
		b = appendString(b, r.Message)
	}
	return b
}

// answerReader walks an answer body.
type answerReader struct {
	b   []byte
	err error
}

func (r *answerReader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = fmt.Errorf("answer: bad %s", what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *answerReader) byte1(what string) byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.err = fmt.Errorf("answer: no %s", what)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *answerReader) str(what string) string {
	n := r.uvarint(what)
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.err = fmt.Errorf("answer: %s of %d bytes runs past the frame", what, n)
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func decodeAnswer(body []byte) (forwardAnswer, error) {
	r := &answerReader{b: body}
	a := forwardAnswer{id: r.uvarint("id"), status: r.byte1("status")}
	if r.err != nil {
		return a, r.err
	}
	switch {
	case a.status > statusFailed:
		return a, fmt.Errorf("answer %d: unknown status %d", a.id, a.status)
	case a.status != statusOK:
		a.message = r.str("message")
	default:
		a.index = r.uvarint("index")
		n := r.uvarint("result count")
		// Each result takes at least 5 bytes: bound n before allocating.
		if r.err == nil && n > uint64(len(r.b))/5 {
			return a, fmt.Errorf("answer %d: %d results cannot fit in %d bytes", a.id, n, len(r.b))
		}
		for i := uint64(0); i < n && r.err == nil; i++ {
			res := fsm.Result{
				Code:  fsm.Code(r.uvarint("code")),
				Epoch: r.uvarint("epoch"),
				Value: r.uvarint("value"),
			}
			switch r.byte1("repeat") {
			case 0:
			case 1:
				res.Repeat = true
			default:
				if r.err == nil {
					r.err = errors.New("answer: bad repeat flag")
				}
			}
			res.Message = r.str("message")
			a.results = append(a.results, res)
		}
	}
	if r.err == nil && len(r.b) > 0 {
		r.err = fmt.Errorf("answer %d: %d bytes after its end", a.id, len(r.b))
	}
	return a, r.err
}
