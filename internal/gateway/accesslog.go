package gateway

import (
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// accessLog writes the gateway's JSON access log lines itself, buffered,
// when Options.AccessLogWriter is set: the same records the injected
// slog logger would write (time, level, msg, component and the request's
// fields), encoded without reflection and written in batches — like
// nginx's "access_log … buffer=64k flush=…" — instead of one write
// system call per request. Lines reach the writer at the latest
// accessFlushEvery after the request, and when the gateway stops.
type accessLog struct {
	w io.Writer
	// stamp is the formatted second of the last line's time.
	stamp atomic.Pointer[timeStamp]
	mu    sync.Mutex
	buf   []byte // complete lines not yet written
	// stopped: the gateway stopped, no flusher runs any more; lines are
	// written at once.
	stopped bool
}

const (
	accessBufferSize = 64 << 10
	accessFlushEvery = 250 * time.Millisecond
	// accessLineMax bounds one line: the long fields are truncated
	// before they get here (host 256, path 512, user 256 bytes).
	accessLineMax = 4 << 10
)

var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// accessRecord is one request's access log fields.
type accessRecord struct {
	at                          time.Time
	method, host, path, route   string
	status                      int
	duration                    time.Duration
	bytes                       int64
	ip, version, user, upstream string
	wafRule                     int
	wafBlocked                  bool
	id                          string
}

func newAccessLog(w io.Writer) *accessLog {
	return &accessLog{w: w, buf: make([]byte, 0, accessBufferSize)}
}

// log appends rec's line to the buffer, writing the buffer out when it
// is full.
func (a *accessLog) log(rec *accessRecord) {
	bp := linePool.Get().(*[]byte)
	line := appendAccessLine((*bp)[:0], rec, &a.stamp)
	a.mu.Lock()
	if len(a.buf)+len(line) > accessBufferSize {
		a.writeLocked()
	}
	a.buf = append(a.buf, line...)
	if a.stopped {
		a.writeLocked()
	}
	a.mu.Unlock()
	if cap(line) <= accessLineMax*4 {
		*bp = line
		linePool.Put(bp)
	}
}

// flush writes out what is buffered.
func (a *accessLog) flush() {
	a.mu.Lock()
	a.writeLocked()
	a.mu.Unlock()
}

// stop flushes the buffer and makes later lines go out at once.
func (a *accessLog) stop() {
	a.mu.Lock()
	a.stopped = true
	a.writeLocked()
	a.mu.Unlock()
}

func (a *accessLog) writeLocked() {
	if len(a.buf) == 0 {
		return
	}
	_, _ = a.w.Write(a.buf) // a failing log must not fail requests
	a.buf = a.buf[:0]
}

// accessTimeLayout is the slog JSON handler's time format.
const accessTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// timeStamp is one second of access log time, formatted: the lines of
// that second share it and add their milliseconds.
type timeStamp struct {
	sec  int64          // Unix seconds
	loc  *time.Location // the time's location
	date []byte         // "2006-01-02T15:04:05"
	zone []byte         // "Z07:00"
}

// appendTime appends t as accessTimeLayout formats it, reusing the
// second's date and zone from cache (nil: no cache) rather than
// formatting the layout for every line.
func appendTime(b []byte, t time.Time, cache *atomic.Pointer[timeStamp]) []byte {
	sec, loc := t.Unix(), t.Location()
	var ts *timeStamp
	if cache != nil {
		ts = cache.Load()
	}
	if ts == nil || ts.sec != sec || ts.loc != loc {
		// A second's offset from UTC is fixed: date and zone hold for
		// every time of this second in this location.
		whole := t.Truncate(time.Second)
		ts = &timeStamp{sec: sec, loc: loc,
			date: whole.AppendFormat(nil, "2006-01-02T15:04:05"), zone: whole.AppendFormat(nil, "Z07:00")}
		if cache != nil {
			cache.Store(ts)
		}
	}
	b = append(b, ts.date...)
	ms := t.Nanosecond() / 1e6
	b = append(b, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
	return append(b, ts.zone...)
}

// appendAccessLine encodes rec as one JSON line with the keys of the
// slog JSON handler's records ("time", "level", "msg") and of
// logging's constants; cache is appendTime's.
func appendAccessLine(b []byte, r *accessRecord, cache *atomic.Pointer[timeStamp]) []byte {
	b = append(b, `{"time":"`...)
	b = appendTime(b, r.at, cache)
	b = append(b, `","level":"INFO","msg":"gateway request","component":"gateway","method":`...)
	b = appendJSONString(b, r.method)
	b = append(b, `,"host":`...)
	b = appendJSONString(b, r.host)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, r.path)
	b = append(b, `,"route":`...)
	b = appendJSONString(b, r.route)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.status), 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(r.duration.Microseconds())/1000, 'f', -1, 64)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, r.bytes, 10)
	b = append(b, `,"remote_ip":`...)
	b = appendJSONString(b, r.ip)
	b = append(b, `,"backend_version":`...)
	b = appendJSONString(b, r.version)
	if r.user != "" {
		b = append(b, `,"user":`...)
		b = appendJSONString(b, r.user)
	}
	if r.wafRule != 0 {
		b = append(b, `,"waf_rule":`...)
		b = strconv.AppendInt(b, int64(r.wafRule), 10)
		b = append(b, `,"waf_blocked":`...)
		b = strconv.AppendBool(b, r.wafBlocked)
	}
	if r.upstream != "" {
		b = append(b, `,"upstream_error":`...)
		b = appendJSONString(b, r.upstream)
	}
	b = append(b, `,"request_id":`...)
	b = appendJSONString(b, r.id)
	return append(b, "}\n"...)
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD, and
// U+2028/U+2029 escaped (as encoding/json does).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			if r == utf8.RuneError {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
