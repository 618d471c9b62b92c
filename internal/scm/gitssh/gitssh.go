// Package gitssh serves git over SSH (golang.org/x/crypto/ssh) for
// Rampart's repositories. Users authenticate with the public keys they
// registered (API, CLI `rampart ssh-key add`, account page); the only
// commands are git-upload-pack and git-receive-pack on ORG/NAME.git, run
// by scm with the same authorisation, branch protection and push
// protection as over HTTPS. Clone URLs are ssh://git@HOST:PORT/ORG/NAME.git
// (the user name is ignored: the key says who you are).
//
// The host key is an Ed25519 key created in the data directory at first
// start; keep it to keep clients' known_hosts valid.
package gitssh

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/reqinfo"
	"github.com/rampartsec/rampart/internal/scm"
)

// Deps are the server's collaborators.
type Deps struct {
	SCM *scm.Service
	IDs *identity.Service
	Log *slog.Logger
	// HostKeyFile holds the host's private key (created when missing).
	HostKeyFile string
	// MaxConns bounds concurrent connections (default 100).
	MaxConns int
}

// Server is the SSH server.
type Server struct {
	scm   *scm.Service
	ids   *identity.Service
	log   *slog.Logger
	cfg   *ssh.ServerConfig
	sem   chan struct{}
	wg    sync.WaitGroup
	hostK ssh.PublicKey
}

// New loads (or creates) the host key and returns the server.
func New(d Deps) (*Server, error) {
	if d.SCM == nil || d.IDs == nil || d.Log == nil || d.HostKeyFile == "" {
		return nil, errors.New("gitssh: SCM, IDs, Log and HostKeyFile are required")
	}
	if d.MaxConns <= 0 {
		d.MaxConns = 100
	}
	signer, err := hostKey(d.HostKeyFile)
	if err != nil {
		return nil, err
	}
	s := &Server{scm: d.SCM, ids: d.IDs, log: d.Log.With(logging.KeyComponent, "gitssh"), sem: make(chan struct{}, d.MaxConns),
		hostK: signer.PublicKey()}
	s.cfg = &ssh.ServerConfig{
		PublicKeyCallback: s.publicKey,
		MaxAuthTries:      6,
		ServerVersion:     "SSH-2.0-Rampart",
	}
	s.cfg.AddHostKey(signer)
	return s, nil
}

// HostKey returns the server's public host key.
func (s *Server) HostKey() ssh.PublicKey { return s.hostK }

func hostKey(file string) (ssh.Signer, error) {
	if b, err := os.ReadFile(file); err == nil {
		return ssh.ParsePrivateKey(b)
	} else if !os.IsNotExist(err) {
		return nil, fmt.Errorf("gitssh: read host key: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "rampart ssh host key")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, fmt.Errorf("gitssh: write host key: %w", err)
	}
	return ssh.NewSignerFromKey(priv)
}

const userIDExt = "rampart-user-id"

func (s *Server) publicKey(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u, k, err := s.scm.UserBySSHKey(ctx, key)
	if err != nil {
		return nil, errors.New("unknown key")
	}
	return &ssh.Permissions{Extensions: map[string]string{userIDExt: strconv.FormatInt(u.ID, 10), "key": k.Fingerprint}}, nil
}

// Serve accepts connections on ln until ctx ends, then waits for the
// connections in flight.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	defer s.wg.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			s.log.Warn("ssh accept", logging.KeyErr, err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		select {
		case s.sem <- struct{}{}:
		default:
			conn.Close() // too many connections
			continue
		}
		s.wg.Go(func() {
			defer func() { <-s.sem }()
			s.handle(ctx, conn)
		})
	}
}

func (s *Server) handle(ctx context.Context, nc net.Conn) {
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second)) // the handshake
	conn, chans, reqs, err := ssh.NewServerConn(nc, s.cfg)
	if err != nil {
		return
	}
	defer conn.Close()
	_ = nc.SetDeadline(time.Time{})
	go ssh.DiscardRequests(reqs)
	uid, _ := strconv.ParseInt(conn.Permissions.Extensions[userIDExt], 10, 64)
	u, err := s.ids.User(ctx, uid)
	if err != nil || u.Disabled {
		return
	}
	remote, _, _ := net.SplitHostPort(nc.RemoteAddr().String())
	ua := string(conn.ClientVersion())
	if len(ua) > 256 {
		ua = ua[:256]
	}
	ctx = reqinfo.With(ctx, reqinfo.Info{RequestID: newID(), RemoteIP: remote, UserAgent: "ssh: " + ua, ActorID: u.ID, ActorName: u.Username})
	for nch := range chans {
		if nch.ChannelType() != "session" {
			_ = nch.Reject(ssh.UnknownChannelType, "only sessions are served")
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			return
		}
		s.session(ctx, u, ch, creqs)
	}
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// session serves one session channel: an exec of a git command.
func (s *Server) session(ctx context.Context, u identity.User, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var protocol string
	for req := range reqs {
		switch req.Type {
		case "env":
			var kv struct{ Name, Value string }
			if ssh.Unmarshal(req.Payload, &kv) == nil && kv.Name == "GIT_PROTOCOL" {
				protocol = kv.Value
				_ = req.Reply(true, nil)
				continue
			}
			_ = req.Reply(false, nil)
		case "exec":
			var cmd struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &cmd); err != nil {
				_ = req.Reply(false, nil)
				return
			}
			_ = req.Reply(true, nil)
			code := s.exec(ctx, u, ch, cmd.Command, protocol)
			_, _ = ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, uint32(code)))
			return
		case "shell":
			_ = req.Reply(true, nil)
			fmt.Fprintf(ch.Stderr(), "Hi %s! You are signed in to Rampart, which serves git over SSH but no shell.\r\n", u.Username)
			_, _ = ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, 1))
			return
		default:
			_ = req.Reply(req.Type == "pty-req", nil)
		}
	}
}

// exec runs one git command; it returns the exit code.
func (s *Server) exec(ctx context.Context, u identity.User, ch ssh.Channel, command, protocol string) int {
	fail := func(err error) int {
		if apperr.KindOf(err) == apperr.Internal {
			s.log.ErrorContext(ctx, "ssh git command", logging.KeyErr, err)
		}
		fmt.Fprintf(ch.Stderr(), "rampart: %s\n", apperr.Message(err))
		return 1
	}
	service, org, name, err := ParseCommand(command)
	if err != nil {
		return fail(err)
	}
	repo, err := s.scm.Repo(ctx, org, name)
	if err != nil {
		return fail(err)
	}
	sub, err := s.ids.Subject(ctx, u, []authz.Scope{authz.ScopeRepoRead, authz.ScopeRepoWrite}, "ssh")
	if err != nil {
		return fail(err)
	}
	c := scm.GitCommand{Repo: repo, Who: scm.Pusher{User: u, Subject: sub, Via: "ssh"}, Stdin: ch, Stdout: ch,
		Stderr: ch.Stderr(), Protocol: protocol}
	if service == "git-upload-pack" {
		err = s.scm.ServeUploadPack(ctx, c)
	} else {
		err = s.scm.ServeReceivePack(ctx, c)
	}
	if err != nil {
		if apperr.KindOf(err) == apperr.Invalid { // git has spoken to the client
			return 1
		}
		return fail(err)
	}
	return 0
}

// ParseCommand reads the command a git client runs over SSH:
// "git-upload-pack 'ORG/NAME.git'" (git quotes the path as the shell
// would; a leading '/' is allowed). It returns the service and the
// repository's org and name.
func ParseCommand(cmd string) (service, org, name string, err error) {
	bad := func(msg string) (string, string, string, error) {
		return "", "", "", apperr.E(apperr.Invalid, "%s", msg)
	}
	if len(cmd) > 1024 {
		return bad("command too long")
	}
	verb, arg, ok := strings.Cut(cmd, " ")
	if !ok {
		return bad("Rampart serves only git-upload-pack and git-receive-pack over SSH")
	}
	switch verb {
	case "git-upload-pack", "git-receive-pack":
	default:
		return bad("Rampart serves only git-upload-pack and git-receive-pack over SSH")
	}
	path, err := unquote(strings.TrimSpace(arg))
	if err != nil {
		return "", "", "", err
	}
	path = strings.TrimPrefix(path, "/")
	org, name, ok = strings.Cut(path, "/")
	if !ok || org == "" || name == "" || strings.Contains(name, "/") {
		return bad("repository path must be ORG/NAME.git")
	}
	name = strings.TrimSuffix(name, ".git")
	if err := identity.ValidateName("org", org); err != nil {
		return "", "", "", err
	}
	if err := scm.ValidateRepoName(name); err != nil {
		return "", "", "", err
	}
	return verb, org, name, nil
}

// unquote undoes a shell's single quoting ('a'\”b' is a'b); an unquoted
// word is taken as it is.
func unquote(s string) (string, error) {
	if !strings.HasPrefix(s, "'") {
		if strings.ContainsAny(s, "'\"\\ \t\n$`;|&<>") {
			return "", apperr.E(apperr.Invalid, "malformed repository path")
		}
		return s, nil
	}
	var b strings.Builder
	for len(s) > 0 {
		if s[0] != '\'' {
			return "", apperr.E(apperr.Invalid, "malformed repository path")
		}
		end := strings.IndexByte(s[1:], '\'')
		if end < 0 {
			return "", apperr.E(apperr.Invalid, "unterminated quote in repository path")
		}
		b.WriteString(s[1 : 1+end])
		s = s[2+end:]
		if strings.HasPrefix(s, `\'`) {
			b.WriteByte('\'')
			s = s[2:]
		}
	}
	return b.String(), nil
}
