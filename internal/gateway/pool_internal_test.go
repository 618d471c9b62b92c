package gateway

import (
	"bufio"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// pipeConn is an upConn over one end of a net.Pipe, and the other end.
func pipeConn() (*upConn, net.Conn) {
	a, b := net.Pipe()
	return &upConn{c: a, br: bufio.NewReader(a), bw: bufio.NewWriter(a)}, b
}

// isClosed reports whether the far end of a pipe sees its peer closed.
func isClosed(peer net.Conn) bool {
	_ = peer.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, err := peer.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errAs(err, &ne) && ne.Timeout())
}

func errAs(err error, ne *net.Error) bool {
	e, ok := err.(net.Error)
	*ne = e
	return ok
}

// TestConnPool_ReapsAndCaps: put reaps expired idle connections (not only
// get), reap does so for a pool nobody uses, and the idle connections of
// all pools together stay under maxIdleTotal.
func TestConnPool_ReapsAndCaps(t *testing.T) {
	var total atomic.Int64
	p := &connPool{total: &total}
	now := time.Now().UnixNano()
	old, oldPeer := pipeConn()
	p.put(old, now-int64(2*idleConnTimeout))
	fresh, freshPeer := pipeConn()
	p.put(fresh, now)
	if len(p.idle) != 1 || p.idle[0] != fresh || total.Load() != 1 {
		t.Fatalf("after put: %d idle, total %d, want the fresh one alone", len(p.idle), total.Load())
	}
	if !isClosed(oldPeer) {
		t.Error("put left an expired idle connection open")
	}
	if isClosed(freshPeer) {
		t.Error("put closed a fresh idle connection")
	}

	p.reap(now + int64(2*idleConnTimeout))
	if len(p.idle) != 0 || total.Load() != 0 || !isClosed(freshPeer) {
		t.Errorf("reap: %d idle, total %d, want none", len(p.idle), total.Load())
	}

	total.Store(maxIdleTotal)
	other, otherPeer := pipeConn()
	p.put(other, now)
	if len(p.idle) != 0 || !isClosed(otherPeer) || total.Load() != maxIdleTotal {
		t.Errorf("put over the global cap kept the connection (%d idle, total %d)", len(p.idle), total.Load())
	}
	total.Store(0)
	p.close()
}
