package vault_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// openLoop sends n requests open-loop at rate per second over conns
// keep-alive HTTP/1.1 connections to addr, as wrk2 does: request i is due
// at start+i/rate, goes out on a free connection as soon as it is due (or,
// when every connection waits for an answer, as soon as one is free), and
// its latency counts from when it was due.
//
// It is one event loop on one locked OS thread (epoll, a timerfd for the
// next due time, non-blocking sockets), not a goroutine per connection: a
// load generator sharing the server's two cores should take as little of
// them as it can, and Go's own timers wake sleepers on whole milliseconds
// when the process is idle, which would send late and in bunches.
//
// reqs[i] is the serialized request i; want is the status every answer
// must have. It returns each request's latency and how late it was sent.
func openLoop(addr string, conns int, rate float64, reqs [][]byte, want int) (lat, late []time.Duration, failed int, firstErr error, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tcp, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		return nil, nil, 0, nil, err
	}
	var sa unix.SockaddrInet4
	copy(sa.Addr[:], tcp.IP.To4())
	sa.Port = tcp.Port
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, nil, 0, nil, fmt.Errorf("epoll: %w", err)
	}
	defer unix.Close(ep)
	tfd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, nil, 0, nil, fmt.Errorf("timerfd: %w", err)
	}
	defer unix.Close(tfd)
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, tfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(tfd)}); err != nil {
		return nil, nil, 0, nil, fmt.Errorf("epoll add timerfd: %w", err)
	}
	type conn struct {
		fd   int
		req  int // the request in flight, -1 when free
		buf  []byte
		sent time.Time
	}
	cs := make([]*conn, conns)
	byFD := map[int]*conn{}
	var free []*conn
	for i := range cs {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, nil, 0, nil, fmt.Errorf("socket: %w", err)
		}
		defer unix.Close(fd)
		if err := unix.Connect(fd, &sa); err != nil {
			return nil, nil, 0, nil, fmt.Errorf("connect %s: %w", addr, err)
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
			return nil, nil, 0, nil, err
		}
		if err := unix.SetNonblock(fd, true); err != nil {
			return nil, nil, 0, nil, err
		}
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}); err != nil {
			return nil, nil, 0, nil, fmt.Errorf("epoll add: %w", err)
		}
		c := &conn{fd: fd, req: -1, buf: make([]byte, 0, 16<<10)}
		cs[i], byFD[fd] = c, c
		free = append(free, c)
	}
	n := len(reqs)
	lat = make([]time.Duration, 0, n)
	late = make([]time.Duration, 0, n)
	interval := float64(time.Second) / rate
	start := time.Now()
	due := func(i int) time.Time { return start.Add(time.Duration(float64(i) * interval)) }
	send := func(c *conn, i int, now time.Time) error {
		c.req, c.buf, c.sent = i, c.buf[:0], now
		late = append(late, now.Sub(due(i)))
		for b := reqs[i]; len(b) > 0; {
			w, err := rawRW(unix.SYS_WRITE, c.fd, b)
			if err == unix.EAGAIN || err == unix.EINTR {
				continue // a request is far smaller than a socket buffer: this is rare
			}
			if err != nil {
				return fmt.Errorf("send: %w", err)
			}
			b = b[w:]
		}
		return nil
	}
	next, done := 0, 0
	events := make([]unix.EpollEvent, conns+1)
	var rbuf [16 << 10]byte
	for done < n {
		now := time.Now()
		for next < n && len(free) > 0 && !due(next).After(now) {
			c := free[len(free)-1]
			free = free[:len(free)-1]
			if err := send(c, next, now); err != nil {
				return nil, nil, 0, nil, err
			}
			next++
		}
		if next < n && len(free) > 0 {
			d := due(next).Sub(now)
			if err := unix.TimerfdSettime(tfd, 0, &unix.ItimerSpec{Value: unix.NsecToTimespec(max(int64(d), 1))}, nil); err != nil {
				return nil, nil, 0, nil, fmt.Errorf("timerfd: %w", err)
			}
		}
		k, err := unix.EpollWait(ep, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, nil, 0, nil, fmt.Errorf("epoll wait: %w", err)
		}
		for _, ev := range events[:k] {
			if int(ev.Fd) == tfd {
				_, _ = rawRW(unix.SYS_READ, tfd, rbuf[:8])
				continue
			}
			c := byFD[int(ev.Fd)]
			r, err := rawRW(unix.SYS_READ, c.fd, rbuf[:])
			if err == unix.EAGAIN || err == unix.EINTR {
				continue
			}
			if err != nil || r == 0 {
				return nil, nil, 0, nil, fmt.Errorf("connection %d closed with request %d in flight: %v", c.fd, c.req, err)
			}
			if c.req < 0 {
				return nil, nil, 0, nil, fmt.Errorf("%d bytes arrived on an idle connection: %q", r, rbuf[:r])
			}
			c.buf = append(c.buf, rbuf[:r]...)
			status, complete, perr := parseResponse(c.buf)
			if perr != nil {
				return nil, nil, 0, nil, perr
			}
			if !complete {
				continue
			}
			now := time.Now()
			lat = append(lat, now.Sub(due(c.req)))
			if status != want {
				failed++
				if firstErr == nil {
					firstErr = fmt.Errorf("request %d: %q", c.req, c.buf)
				}
			}
			c.req = -1
			free = append(free, c)
			done++
		}
	}
	return lat, late, failed, firstErr, nil
}

// rawRW is read or write on a non-blocking descriptor as a raw system
// call: it never blocks, so the Go runtime need not be told (epoll_wait,
// which blocks, goes through the runtime and lets another thread run the
// process's goroutines meanwhile — an in-process server's).
func rawRW(trap uintptr, fd int, b []byte) (int, error) {
	n, _, errno := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// parseResponse reads an HTTP/1.1 response with a Content-Length from
// the start of b: its status and whether all of it is there.
func parseResponse(b []byte) (status int, complete bool, err error) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return 0, false, nil
	}
	head := b[:end]
	if len(head) < 12 || !bytes.HasPrefix(head, []byte("HTTP/1.1 ")) {
		return 0, false, fmt.Errorf("not an HTTP/1.1 response: %q", head)
	}
	status, err = strconv.Atoi(string(head[9:12]))
	if err != nil {
		return 0, false, fmt.Errorf("bad status line: %q", head)
	}
	length := -1
	for line := range bytes.SplitSeq(head, []byte("\r\n")) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(bytes.TrimSpace(value))); err != nil {
				return 0, false, fmt.Errorf("bad Content-Length: %q", line)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")), bytes.EqualFold(name, []byte("Connection")) && bytes.EqualFold(bytes.TrimSpace(value), []byte("close")):
			return 0, false, fmt.Errorf("the load generator reads only keep-alive answers with a Content-Length: %q", line)
		}
	}
	if length < 0 {
		return 0, false, errors.New("an answer without Content-Length")
	}
	switch have := len(b) - end - 4; {
	case have == length:
		return status, true, nil
	case have > length:
		return 0, false, fmt.Errorf("%d bytes more than the answer's Content-Length", have-length)
	}
	return status, false, nil
}

// serialize writes r as it goes on the wire.
func serialize(r *http.Request) ([]byte, error) {
	var b bytes.Buffer
	if err := r.Write(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
