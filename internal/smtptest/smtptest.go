// Package smtptest is a tiny SMTP sink for tests: it listens on loopback,
// speaks enough ESMTP for net/smtp (EHLO, AUTH PLAIN, MAIL, RCPT, DATA,
// RSET, NOOP, QUIT), keeps every message it accepts and hands them to the
// test parsed with net/mail. It never relays anything.
package smtptest

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// maxData caps one message.
const maxData = 1 << 20

// Message is one accepted message.
type Message struct {
	// From and To are the envelope addresses.
	From string
	To   []string
	// Raw is the message as sent (after DATA, dots unstuffed).
	Raw    []byte
	Header mail.Header
	Body   string
	// User is the name the client authenticated as ("" without AUTH).
	User string
}

// Server is a running sink.
type Server struct {
	ln   net.Listener
	user string
	pass string
	msgs chan Message
	wg   sync.WaitGroup
	mu   sync.Mutex
	all  []Message
	// Refuse makes RCPT fail with 550 (to test delivery errors).
	refuse bool
}

// Option configures a Server.
type Option func(*Server)

// WithAuth makes the sink offer AUTH PLAIN and accept only this user and
// password.
func WithAuth(user, pass string) Option { return func(s *Server) { s.user, s.pass = user, pass } }

// Refusing makes the sink refuse every recipient.
func Refusing() Option { return func(s *Server) { s.refuse = true } }

// Start runs a sink on 127.0.0.1 until the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{ln: ln, msgs: make(chan Message, 100)}
	for _, o := range opts {
		o(s)
	}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

// Host is the sink's address (127.0.0.1).
func (s *Server) Host() string { return s.ln.Addr().(*net.TCPAddr).IP.String() }

// Port is the sink's port.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Next returns the next message accepted, failing the test after wait.
func (s *Server) Next(t testing.TB, wait time.Duration) Message {
	t.Helper()
	select {
	case m := <-s.msgs:
		return m
	case <-time.After(wait):
		t.Fatalf("no mail arrived within %s", wait)
		return Message{}
	}
}

// Messages returns every message accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.all...)
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			s.session(c)
		}()
	}
}

// session speaks SMTP on one connection.
func (s *Server) session(c net.Conn) {
	r := bufio.NewReader(io.LimitReader(c, 4*maxData))
	reply := func(lines ...string) {
		var b strings.Builder
		for _, l := range lines {
			b.WriteString(l + "\r\n")
		}
		_, _ = io.WriteString(c, b.String())
	}
	reply("220 smtptest ESMTP ready")
	var (
		m      Message
		authed = s.user == ""
	)
	for {
		line, err := readLine(r)
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			if s.user != "" {
				reply("250-smtptest", "250-8BITMIME", "250 AUTH PLAIN")
			} else {
				reply("250-smtptest", "250 8BITMIME")
			}
		case "HELO":
			reply("250 smtptest")
		case "AUTH":
			mech, ir, _ := strings.Cut(arg, " ")
			if s.user == "" || !strings.EqualFold(mech, "PLAIN") {
				reply("504 unsupported")
				continue
			}
			raw, err := base64.StdEncoding.DecodeString(ir)
			parts := bytes.Split(raw, []byte{0})
			if err != nil || len(parts) != 3 || string(parts[1]) != s.user || string(parts[2]) != s.pass {
				reply("535 authentication failed")
				continue
			}
			authed, m.User = true, s.user
			reply("235 ok")
		case "MAIL":
			if !authed {
				reply("530 authentication required")
				continue
			}
			m.From, m.To = addr(arg), nil
			reply("250 ok")
		case "RCPT":
			if s.refuse {
				reply("550 no such mailbox")
				continue
			}
			m.To = append(m.To, addr(arg))
			reply("250 ok")
		case "DATA":
			if m.From == "" || len(m.To) == 0 {
				reply("503 need MAIL and RCPT first")
				continue
			}
			reply("354 go ahead")
			data, err := readData(r)
			if err != nil {
				reply("552 " + err.Error())
				return
			}
			m.Raw = data
			if msg, err := mail.ReadMessage(bytes.NewReader(data)); err == nil {
				body, _ := io.ReadAll(msg.Body)
				m.Header, m.Body = msg.Header, string(body)
			}
			s.mu.Lock()
			s.all = append(s.all, m)
			n := len(s.all)
			s.mu.Unlock()
			select {
			case s.msgs <- m:
			default:
			}
			reply("250 ok: queued as " + strconv.Itoa(n))
			m = Message{User: m.User}
		case "RSET":
			m = Message{User: m.User}
			reply("250 ok")
		case "NOOP":
			reply("250 ok")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 command not implemented")
		}
	}
}

func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if len(line) > 4096 {
		return "", errors.New("line too long")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// readData reads a DATA section up to the lone dot, unstuffing dots.
func readData(r *bufio.Reader) ([]byte, error) {
	var b bytes.Buffer
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		if line == ".\r\n" || line == ".\n" {
			return b.Bytes(), nil
		}
		line = strings.TrimPrefix(line, ".")
		if b.Len()+len(line) > maxData {
			return nil, errors.New("message too large")
		}
		b.WriteString(line)
	}
}

// addr takes the address out of "FROM:<a@b> SIZE=…".
func addr(arg string) string {
	if i := strings.IndexByte(arg, '<'); i >= 0 {
		if j := strings.IndexByte(arg[i:], '>'); j > 0 {
			return arg[i+1 : i+j]
		}
	}
	_, v, _ := strings.Cut(arg, ":")
	return strings.TrimSpace(v)
}
