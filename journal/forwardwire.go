package journal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The forward protocol, spoken on the raft port (see mux.go):
//
//	hello    client → server: forwardMagic, forwardVersion,
//	         uvarint len + node id, uvarint len + cluster id
//	welcome  server → client: 0, or 1 + uvarint len + reason (then close)
//	frames   both ways: uvarint body length + body
//	request  body: kind byte, uvarint id, then
//	         kindCall:      uvarint timeout ms (0: none), uvarint len +
//	                        method, uvarint len + request id, uvarint len
//	                        + caller, the rest: the call's body
//	         kindReadIndex: uvarint timeout ms
//	         kindCancel:    nothing: the caller gave up on request id
//	answer   body: uvarint id, status byte, then
//	         statusOK:      the rest: the answer's body (kindReadIndex:
//	                        uvarint index)
//	         statusError:   uvarint code, uvarint len + message: the
//	                        call's handler failed it (a CallError)
//	         otherwise:     uvarint len + message
//
// Requests are answered in any order; the id pairs them. A cancel is
// never answered.

const (
	forwardVersion byte = 2
	// maxForwardFrame bounds one frame: a call's body (a master bounds its
	// requests to 4 MiB) and room for its method and ids.
	maxForwardFrame = 5<<20 + 64<<10
	// maxHelloString bounds the node and cluster ids in a hello, and the
	// method and request id of a call.
	maxHelloString = 256
)

// Request kinds.
const (
	kindCall byte = iota + 1
	kindReadIndex
	kindCancel
)

// Answer statuses.
const (
	statusOK byte = iota
	// statusRefused: the node does not lead and did nothing; the client
	// may send the request to the next leader.
	statusRefused
	// statusError: the call's handler ran and failed it; the answer
	// carries the handler's code and message.
	statusError
	// statusFailed: the leader could not run the request (it is shutting
	// down, the request's time ran out, ...).
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
		return h, fmt.Errorf("forward protocol version %d, this master speaks %d: upgrade every master to the same release", v, forwardVersion)
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

// forwardRequest is one request of a forward connection.
type forwardRequest struct {
	kind      byte
	id        uint64
	timeoutMS uint64
	call      Call // kindCall
}

// encodeRequest returns a request's body (writeFrame frames it).
func encodeRequest(req forwardRequest) []byte {
	b := make([]byte, 0, 4*binary.MaxVarintLen64+len(req.call.Method)+len(req.call.RequestID)+len(req.call.Caller)+len(req.call.Body)+2)
	b = append(b, req.kind)
	b = binary.AppendUvarint(b, req.id)
	switch req.kind {
	case kindCall:
		b = binary.AppendUvarint(b, req.timeoutMS)
		b = appendString(b, req.call.Method)
		b = appendString(b, req.call.RequestID)
		b = appendString(b, req.call.Caller)
		b = append(b, req.call.Body...)
	case kindReadIndex:
		b = binary.AppendUvarint(b, req.timeoutMS)
	}
	return b
}

// wireReader walks a request or answer body.
type wireReader struct {
	what string // "request" or "answer", for errors
	b    []byte
	err  error
}

func (r *wireReader) uvarint(field string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = fmt.Errorf("%s: bad %s", r.what, field)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *wireReader) byte1(field string) byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.err = fmt.Errorf("%s: no %s", r.what, field)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *wireReader) str(field string, limit int) string {
	n := r.uvarint(field)
	if r.err != nil {
		return ""
	}
	if n > uint64(limit) || n > uint64(len(r.b)) {
		r.err = fmt.Errorf("%s: %s of %d bytes runs past the frame or its limit", r.what, field, n)
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// rest returns a copy of what is left: the caller may reuse the frame.
func (r *wireReader) rest() []byte {
	if r.err != nil {
		return nil
	}
	out := make([]byte, len(r.b))
	copy(out, r.b)
	r.b = nil
	return out
}

// end fails when bytes are left over.
func (r *wireReader) end(id uint64) {
	if r.err == nil && len(r.b) > 0 {
		r.err = fmt.Errorf("%s %d: %d bytes after its end", r.what, id, len(r.b))
	}
}

// decodeRequest decodes a request body. The call's body is a copy: the
// frame may be reused after it returns.
func decodeRequest(body []byte) (forwardRequest, error) {
	r := &wireReader{what: "request", b: body}
	req := forwardRequest{kind: r.byte1("kind"), id: r.uvarint("id")}
	if r.err != nil {
		return req, r.err
	}
	switch req.kind {
	case kindCall:
		req.timeoutMS = r.uvarint("timeout")
		req.call.Method = r.str("method", maxHelloString)
		req.call.RequestID = r.str("request id", maxHelloString)
		req.call.Caller = r.str("caller", maxHelloString)
		req.call.Body = r.rest()
		if r.err == nil && req.call.Method == "" {
			r.err = fmt.Errorf("request %d: a call without a method", req.id)
		}
	case kindReadIndex:
		req.timeoutMS = r.uvarint("timeout")
	case kindCancel:
	default:
		return req, fmt.Errorf("request %d: unknown kind %d", req.id, req.kind)
	}
	r.end(req.id)
	return req, r.err
}

// forwardAnswer answers one request.
type forwardAnswer struct {
	id      uint64
	status  byte
	body    []byte // statusOK
	code    uint32 // statusError
	message string // anything but statusOK
}

// encodeAnswer returns an answer's body (writeFrame frames it).
func encodeAnswer(a forwardAnswer) []byte {
	b := binary.AppendUvarint(make([]byte, 0, 16+len(a.body)+len(a.message)), a.id)
	b = append(b, a.status)
	switch a.status {
	case statusOK:
		return append(b, a.body...)
	case statusError:
		b = binary.AppendUvarint(b, uint64(a.code))
	}
	return appendString(b, a.message)
}

// maxAnswerMessage bounds an error message in an answer.
const maxAnswerMessage = 1 << 20

func decodeAnswer(body []byte) (forwardAnswer, error) {
	r := &wireReader{what: "answer", b: body}
	a := forwardAnswer{id: r.uvarint("id"), status: r.byte1("status")}
	if r.err != nil {
		return a, r.err
	}
	switch a.status {
	case statusOK:
		a.body = r.rest()
	case statusError:
		code := r.uvarint("code")
		if r.err == nil && code > 1<<31 {
			r.err = fmt.Errorf("answer %d: code %d out of range", a.id, code)
		}
		a.code = uint32(code)
		a.message = r.str("message", maxAnswerMessage)
	case statusRefused, statusFailed:
		a.message = r.str("message", maxAnswerMessage)
	default:
		return a, fmt.Errorf("answer %d: unknown status %d", a.id, a.status)
	}
	r.end(a.id)
	return a, r.err
}
