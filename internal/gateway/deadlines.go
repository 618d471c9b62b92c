package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// Deadlines on the client's side of an exchange. http.Server's
// ReadHeaderTimeout bounds the request head; what net/http offers beyond
// it (ReadTimeout, WriteTimeout) caps whole requests and responses, which
// would cut off long uploads, downloads and streams. The gateway sets
// deadlines per operation instead, through http.ResponseController (on
// HTTP/1 the connection's, on HTTP/2 the stream's): each read of a
// request body must complete within Options.BodyIdleTimeout, each write
// of a response within Options.WriteIdleTimeout. A client that stops
// sending its body or reading its response is cut off, and the backend
// exchange with it ends; one that keeps making progress is not.
//
// On HTTP/2 a deadline is a timer that resets the stream when it fires,
// whether an operation is in progress or not: there it is armed before
// each operation and disarmed after. On HTTP/1 a deadline only fails I/O
// in progress or later: it is moved before each operation and left as
// it is after (net/http clears the write deadline after each response;
// a read deadline left on an unread body bounds net/http's drain of it).

// errBodyTimeout cancels a request whose client stopped sending its body.
var errBodyTimeout = errors.New("request body not received in time")

// drainGrace is how long net/http may read what is left of a request
// body the gateway did not read before it closes the connection (it
// reads up to 256 KiB of it, to keep the connection, unless told to
// close it).
const drainGrace = 250 * time.Millisecond

// Body states.
const (
	bodyReading int32 = iota
	bodyEOF
	bodyFailed
	bodyTimedOut
)

// idleBody is a request body each Read of which must complete within
// idle. It stands in for the body of a copy of the request (never of the
// request net/http passed to the handler: net/http looks at that one's
// body after the handler to decide whether the connection can be kept).
type idleBody struct {
	rc     io.ReadCloser
	rw     http.ResponseWriter // the connection's (net/http's) writer
	idle   time.Duration
	h2     bool
	cancel context.CancelCauseFunc
	state  atomic.Int32 // Close may run concurrently with Read (http.Transport)
	err    error        // the error that ended the body (set before state)
}

// watchBody returns a copy of r whose body is read under BodyIdleTimeout
// deadlines and whose context is canceled when the client stops sending
// it; st.sw keeps the body's state. r must have a body.
func (g *Gateway) watchBody(r *http.Request, w http.ResponseWriter, st *reqState) *http.Request {
	ctx, cancel := context.WithCancelCause(r.Context())
	b := &idleBody{rc: r.Body, rw: w, idle: g.opt.BodyIdleTimeout, h2: r.ProtoMajor >= 2, cancel: cancel}
	r = r.WithContext(ctx)
	r.Body = b
	st.sw.body = b
	return r
}

func (b *idleBody) setReadDeadline(t time.Time) {
	_ = http.NewResponseController(b.rw).SetReadDeadline(t)
}

func (b *idleBody) Read(p []byte) (int, error) {
	switch b.state.Load() {
	case bodyEOF:
		return 0, io.EOF
	case bodyFailed, bodyTimedOut:
		return 0, b.err
	}
	b.setReadDeadline(time.Now().Add(b.idle))
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		// On HTTP/1 net/http starts its background read of the
		// connection on EOF, with no deadline: the body's is never set
		// again.
		b.state.Store(bodyEOF)
		if b.h2 {
			b.setReadDeadline(time.Time{})
		}
	case err != nil:
		b.err = err
		if errors.Is(err, os.ErrDeadlineExceeded) {
			b.state.Store(bodyTimedOut)
			b.cancel(errBodyTimeout)
		} else {
			b.state.Store(bodyFailed)
		}
	case b.h2:
		b.setReadDeadline(time.Time{})
	}
	return n, err
}

// Close closes the body. On HTTP/1 net/http then reads what is left of
// it (up to 256 KiB, to keep the connection): within one idle period.
func (b *idleBody) Close() error {
	if !b.h2 && b.state.Load() == bodyReading {
		b.setReadDeadline(time.Now().Add(b.idle))
	}
	return b.rc.Close()
}

// unread reports whether the body was not read to its end: what is left
// of it may still be on its way.
func (b *idleBody) unread() bool { return b.state.Load() != bodyEOF }

// timedOut reports whether the client stopped sending the body.
func (b *idleBody) timedOut() bool { return b.state.Load() == bodyTimedOut }

// closeIfBodyUnread marks the response to an HTTP/1 request whose body
// was not read to its end to close the connection (the gateway answers
// the request itself, before or instead of forwarding it). net/http then
// does not wait for the rest of the body before it writes the response;
// ServeHTTP gives its drain of the body after the response drainGrace.
func closeIfBodyUnread(w http.ResponseWriter) {
	for {
		switch t := w.(type) {
		case *statusWriter:
			if b := t.body; b != nil && !b.h2 && b.unread() {
				t.Header().Set("Connection", "close")
			}
			return
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return
		}
	}
}

// beforeWrite sets the deadline of a write to the client.
func (w *statusWriter) beforeWrite() {
	if w.writeIdle > 0 {
		_ = http.NewResponseController(w.ResponseWriter).SetWriteDeadline(time.Now().Add(w.writeIdle))
	}
}

// afterWrite clears it on HTTP/2 (see above).
func (w *statusWriter) afterWrite() {
	if w.writeIdle > 0 && w.h2 {
		_ = http.NewResponseController(w.ResponseWriter).SetWriteDeadline(time.Time{})
	}
}

// endExchange runs when the handler returns, before net/http finishes
// the response. On HTTP/1 the final flush of the response gets a write
// deadline, and net/http's drain of a body not read to its end gets
// drainGrace (the connection is closed if the body is not all there by
// then).
func (st *reqState) endExchange() {
	sw := &st.sw
	if sw.h2 {
		return
	}
	sw.beforeWrite()
	if b := sw.body; b != nil && b.unread() {
		if b.timedOut() {
			b.setReadDeadline(aLongTimeAgo) // the client is not sending it
		} else {
			b.setReadDeadline(time.Now().Add(drainGrace))
		}
	}
}
