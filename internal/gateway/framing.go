package gateway

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
)

// Request framing checks. net/http resolves a request carrying both
// Content-Length and Transfer-Encoding by dropping Content-Length, and
// forgets whether a Host header was sent empty or not at all. Both matter
// at the edge: the first is the classic request smuggling vector (a
// front end and a back end that disagree on where a request ends), the
// second is what CRS rule 920290 looks for. framingConn watches the bytes
// net/http reads from a plain HTTP/1 connection, follows the request
// framing (headers, Content-Length bodies, chunked bodies and trailers)
// and queues what it saw per request; the handler takes the facts of its
// request from the front of the queue (net/http serves the requests of a
// connection in order).

// framingKey marks a connection's framing state in request contexts.
type framingKey struct{}

// requestFacts is what the framing parser saw in one request's headers.
type requestFacts struct {
	contentLength    bool
	transferEncoding bool
	hostHeaders      int
	hostEmpty        bool
}

// framingState is one connection's parser and its queue of facts, and
// the direct path's watch on the client (direct.go).
type framingState struct {
	mu    sync.Mutex
	p     framingParser
	queue []requestFacts
	// up is the backend connection of the direct-path exchange in
	// flight for the connection's current request (HTTP/1 serves one
	// at a time), gone is set once a read from the client failed: up's
	// I/O is aborted then.
	up   *upConn
	gone atomic.Bool // set under mu; read without it
}

// watch registers uc, the backend connection of the current request's
// exchange, to have its I/O aborted when a read from the client fails
// (at once when one has). false: another exchange is registered, uc is
// not.
func (f *framingState) watch(uc *upConn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.up != nil {
		return false
	}
	f.up = uc
	if f.gone.Load() {
		_ = uc.c.SetDeadline(aLongTimeAgo)
	}
	return true
}

// unwatch unregisters uc, reporting false when the client went away
// (uc's I/O was aborted). The abort happens under f.mu: once unwatch
// returns, uc is left alone, whoever uses it next.
func (f *framingState) unwatch(uc *upConn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.up == uc {
		f.up = nil
	}
	return !f.gone.Load()
}

// isGone reports whether a read from the client failed. It takes no
// lock: readFailed sets gone before it aborts the exchange's I/O, so
// whoever saw the abort (or cleared its deadline after it) sees gone.
func (f *framingState) isGone() bool { return f.gone.Load() }

// readFailed notes a failed read from the client and aborts the
// exchange in flight. It mirrors net/http, which cancels the request's
// context when a read from the connection fails (the client went away,
// or the connection was closed) — except for the timeout its own
// abortPendingRead provokes to end its background read. Timeouts are
// ignored here: that one, and those of the request body's read deadlines
// (deadlines.go), which end the request themselves (the gateway sets no
// other read deadline while it serves a request).
func (f *framingState) readFailed(err error) {
	// A type assertion as net/http's own (errors.As would allocate: this
	// runs for every request, when net/http ends its background read).
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gone.Store(true)
	if f.up != nil {
		_ = f.up.c.SetDeadline(aLongTimeAgo)
	}
}

// pop returns the facts of the next request (ok false when the parser
// lost track of the connection or never saw the request).
func (f *framingState) pop() (requestFacts, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queue) == 0 {
		return requestFacts{}, false
	}
	rf := f.queue[0]
	if len(f.queue) == 1 {
		f.queue = f.queue[:0] // keep the array: no allocation per request
	} else {
		f.queue = f.queue[1:]
	}
	return rf, true
}

func (f *framingState) feed(b []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queue = f.p.feed(b, f.queue)
	if len(f.queue) > 64 {
		// Far more pipelined requests than net/http reads ahead: stop
		// following this connection.
		f.p.state = stLost
		f.queue = nil
	}
}

// framingListener wraps accepted plain connections in framingConn.
type framingListener struct{ net.Listener }

func (l *framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if _, ok := c.(*net.TCPConn); !ok {
		return c, nil // TLS: see docs/gateway.md
	}
	return &framingConn{Conn: c, st: &framingState{}}, nil
}

// framingConn feeds what is read from the connection to its parser.
type framingConn struct {
	net.Conn
	st *framingState
}

func (c *framingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.st.feed(b[:n])
	}
	if err != nil {
		c.st.readFailed(err)
	}
	return n, err
}

// connContext puts the connection's framing state into its requests'
// contexts (http.Server.ConnContext).
func connContext(ctx context.Context, c net.Conn) context.Context {
	if fc, ok := c.(*framingConn); ok {
		return context.WithValue(ctx, framingKey{}, fc.st)
	}
	return ctx
}

// Parser states.
const (
	stRequestLine = iota
	stHeaders
	stBody
	stChunkSize
	stChunkData
	stChunkCRLF
	stTrailers
	stLost // stopped following (HTTP/2 preface, upgrade, confusion)
)

// maxFramingLine bounds a header or chunk-size line the parser holds;
// net/http refuses longer header blocks anyway.
const maxFramingLine = 1 << 20

type framingParser struct {
	state     int
	line      []byte
	facts     requestFacts
	remaining int64 // bytes left in a body or chunk
	chunked   bool
	clValue   int64
	upgrade   bool
	// http10: the request is HTTP/1.0, whose Transfer-Encoding net/http
	// ignores (the body is framed by Content-Length alone).
	http10 bool
	// hdr is the header line being read: net/http joins obs-folded
	// continuation lines (starting with a space or tab) to it.
	hdr []byte
}

// feed advances the parser over b, appending the facts of every request
// whose headers complete to q.
func (p *framingParser) feed(b []byte, q []requestFacts) []requestFacts {
	for len(b) > 0 {
		switch p.state {
		case stLost:
			return q
		case stBody, stChunkData:
			n := int64(len(b))
			if n > p.remaining {
				n = p.remaining
			}
			b = b[n:]
			p.remaining -= n
			if p.remaining == 0 {
				if p.state == stBody {
					p.state = stRequestLine
				} else {
					p.state = stChunkCRLF
				}
			}
		default:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				p.line = append(p.line, b...)
				if len(p.line) > maxFramingLine {
					p.state = stLost
				}
				return q
			}
			p.line = append(p.line, b[:i]...)
			b = b[i+1:]
			line := bytes.TrimSuffix(p.line, []byte("\r"))
			q = p.lineDone(line, q)
			p.line = p.line[:0]
		}
	}
	return q
}

func (p *framingParser) lineDone(line []byte, q []requestFacts) []requestFacts {
	switch p.state {
	case stRequestLine:
		if len(line) == 0 {
			return q // net/http skips empty lines before a request
		}
		if bytes.HasPrefix(line, []byte("PRI * HTTP/2")) {
			p.state = stLost
			return q
		}
		p.facts, p.chunked, p.clValue, p.upgrade = requestFacts{}, false, -1, false
		// As net/http's parseRequestLine: the protocol is what follows
		// the second space.
		_, rest, _ := bytes.Cut(line, []byte(" "))
		_, proto, _ := bytes.Cut(rest, []byte(" "))
		p.http10 = string(proto) == "HTTP/1.0"
		p.hdr = p.hdr[:0]
		p.state = stHeaders
	case stHeaders:
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			// obs-fold: net/http joins the line, trimmed, to the
			// previous header's value with a space (and refuses a
			// request whose first header line is folded).
			if len(p.hdr) == 0 || len(p.hdr)+len(line) > maxFramingLine {
				p.state = stLost
				return q
			}
			p.hdr = append(p.hdr, ' ')
			p.hdr = append(p.hdr, bytes.Trim(line, " \t")...)
			return q
		}
		if len(p.hdr) > 0 {
			p.header(p.hdr)
			p.hdr = p.hdr[:0]
		}
		if len(line) > 0 {
			p.hdr = append(p.hdr, line...)
			return q
		}
		q = append(q, p.facts)
		// net/http ignores Transfer-Encoding on HTTP/1.0 requests (the
		// fact is kept: both headers are refused all the same).
		te := p.facts.transferEncoding && !p.http10
		switch {
		case p.upgrade:
			// A connection that may switch protocols carries no more
			// HTTP/1 requests we could follow reliably (the gateway
			// closes it after an upgrade request not upgraded).
			p.state = stLost
		case te && p.chunked:
			p.state = stChunkSize
		case te:
			p.state = stLost // net/http refuses other codings and closes
		case p.clValue > 0:
			p.state, p.remaining = stBody, p.clValue
		default:
			p.state = stRequestLine
		}
	case stChunkSize:
		sz := line
		if i := bytes.IndexByte(sz, ';'); i >= 0 {
			sz = sz[:i]
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(sz)), 16, 64)
		if err != nil || n < 0 {
			p.state = stLost
			return q
		}
		if n == 0 {
			p.state = stTrailers
		} else {
			p.state, p.remaining = stChunkData, n
		}
	case stChunkCRLF:
		if len(line) != 0 {
			p.state = stLost
			return q
		}
		p.state = stChunkSize
	case stTrailers:
		if len(line) == 0 {
			p.state = stRequestLine
		}
	}
	return q
}

func (p *framingParser) header(line []byte) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return
	}
	name := bytes.TrimSpace(line[:i])
	value := bytes.TrimSpace(line[i+1:])
	switch {
	case bytes.EqualFold(name, []byte("Content-Length")):
		p.facts.contentLength = true
		if n, err := strconv.ParseInt(string(value), 10, 64); err == nil && n >= 0 {
			p.clValue = n
		}
	case bytes.EqualFold(name, []byte("Transfer-Encoding")):
		p.facts.transferEncoding = true
		last := value
		if j := bytes.LastIndexByte(value, ','); j >= 0 {
			last = bytes.TrimSpace(value[j+1:])
		}
		p.chunked = bytes.EqualFold(last, []byte("chunked"))
	case bytes.EqualFold(name, []byte("Host")):
		p.facts.hostHeaders++
		p.facts.hostEmpty = len(value) == 0
	case bytes.EqualFold(name, []byte("Upgrade")):
		p.upgrade = true
	}
}
