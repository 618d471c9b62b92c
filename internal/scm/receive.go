package scm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/identity"
)

// Pusher is who runs a git command: the user and what they may do.
type Pusher struct {
	User    identity.User
	Subject authz.Subject
	// Via names the transport: "http" or "ssh".
	Via string
}

// GitCommand is one git protocol command a transport hands to the service.
type GitCommand struct {
	Repo   Repo
	Who    Pusher
	Stdin  io.Reader
	Stdout io.Writer
	// Stderr receives git's own diagnostics (nil discards them).
	Stderr io.Writer
	// Stateless runs git with --stateless-rpc (smart HTTP).
	Stateless bool
	// AdvertiseRefs only advertises refs (GET info/refs).
	AdvertiseRefs bool
	// Protocol is the client's GIT_PROTOCOL (e.g. "version=2").
	Protocol string
}

var protocolRE = regexp.MustCompile(`^[a-z0-9=:.-]{1,64}$`)

func (c GitCommand) env() []string {
	if c.Protocol != "" && protocolRE.MatchString(c.Protocol) {
		return []string{"GIT_PROTOCOL=" + c.Protocol}
	}
	return nil
}

func (s *Service) command(ctx context.Context, c GitCommand, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, s.gitBin, args...)
	cmd.Dir = s.Path(c.Repo)
	cmd.Env = gitEnv(append(c.env(), env...)...)
	cmd.Stdin, cmd.Stdout = c.Stdin, c.Stdout
	cmd.Stderr = c.Stderr
	if c.Stderr == nil {
		var b limitedBuffer
		b.max = 8 << 10
		cmd.Stderr = &b
	}
	return cmd
}

func rpcArgs(c GitCommand, service string) []string {
	args := []string{service}
	if c.Stateless {
		args = append(args, "--stateless-rpc")
	}
	if c.AdvertiseRefs {
		args = append(args, "--advertise-refs")
	}
	return append(args, ".")
}

// ServeUploadPack serves a clone or fetch.
func (s *Service) ServeUploadPack(ctx context.Context, c GitCommand) error {
	if err := s.available(); err != nil {
		return err
	}
	if err := s.Authorize(c.Who.Subject, authz.RepoRead, c.Repo); err != nil {
		return err
	}
	args := append([]string{"-c", "uploadpack.allowFilter=true", "-c", "uploadpack.allowAnySHA1InWant=false"}, rpcArgs(c, "upload-pack")...)
	return s.finish(s.command(ctx, c, nil, args...).Run(), "upload-pack")
}

func (s *Service) finish(err error, what string) error {
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		// git has told the client; the failure is the client's (a
		// malformed request, a refused push) or logged by git.
		return apperr.Wrap(err, apperr.Invalid, "git "+what+" failed")
	}
	return err
}

// receiveConfig is the configuration of every receive-pack run.
func (s *Service) receiveConfig() []string {
	return []string{
		"-c", "core.hooksPath=" + s.hooksDir,
		"-c", "receive.advertisePushOptions=true",
		"-c", "receive.maxInputSize=" + strconv.FormatInt(s.maxPush, 10),
		"-c", "receive.fsckObjects=true",
		"-c", "receive.denyNonFastForwards=false",
		"-c", "receive.denyDeletes=false",
		"-c", "receive.denyCurrentBranch=ignore",
		"-c", "receive.autogc=false",
		"-c", "receive.updateServerInfo=false",
		"-c", "core.logAllRefUpdates=true",
	}
}

// ServeReceivePack serves a push: git receive-pack with Rampart's hooks,
// whose checks (branch protection, push protection) run in this process.
func (s *Service) ServeReceivePack(ctx context.Context, c GitCommand) error {
	if err := s.available(); err != nil {
		return err
	}
	if err := s.Authorize(c.Who.Subject, authz.RepoWrite, c.Repo); err != nil {
		return err
	}
	args := append(s.receiveConfig(), rpcArgs(c, "receive-pack")...)
	if c.AdvertiseRefs {
		return s.finish(s.command(ctx, c, nil, args...).Run(), "receive-pack")
	}
	if c.Stdin != nil {
		c.Stdin = &cappedReader{r: c.Stdin, left: s.maxPush + 8<<20}
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("hook socket: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "hook-server"), os.NewFile(uintptr(fds[1]), "hook-client")
	conn, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		theirs.Close()
		return fmt.Errorf("hook socket: %w", err)
	}
	end := "RAMPART-" + randomHex(16)
	cmd := s.command(ctx, c, []string{"RAMPART_HOOK_END=" + end}, args...)
	cmd.ExtraFiles = []*os.File{theirs} // fd 3 in receive-pack and its hooks
	p := &pushSession{s: s, c: c, ctx: ctx}
	defer p.release()
	if err := cmd.Start(); err != nil {
		theirs.Close()
		conn.Close()
		return fmt.Errorf("start receive-pack: %w", err)
	}
	theirs.Close()
	var wg sync.WaitGroup
	wg.Go(func() { p.serveHooks(conn, end) })
	werr := cmd.Wait()
	conn.Close()
	wg.Wait()
	return s.finish(werr, "receive-pack")
}

// cappedReader fails once more than left bytes are read.
type cappedReader struct {
	r    io.Reader
	left int64
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, apperr.E(apperr.TooLarge, "push exceeds the size limit")
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// serveHooks answers the hooks of one receive-pack until it exits.
func (p *pushSession) serveHooks(conn net.Conn, end string) {
	br := bufio.NewReader(conn)
	for {
		req, err := readHookRequest(br)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				p.s.log.WarnContext(p.ctx, "hook request", "repo", p.c.Repo.FullName(), "err", err)
				_ = writeHookResponse(conn, end, false, []string{"rampart: " + apperr.Message(err)})
			}
			return
		}
		var (
			ok    bool
			lines []string
		)
		switch req.Hook {
		case "pre-receive":
			ok, lines = p.preReceive(req)
		case "post-receive":
			ok, lines = true, p.postReceive(req)
		}
		if err := writeHookResponse(conn, end, ok, lines); err != nil {
			return
		}
	}
}

// quarantineEnv returns the environment that lets git see the objects of
// a push before receive-pack moves them into the repository.
func (p *pushSession) quarantineEnv(q string) ([]string, error) {
	if q == "" {
		return nil, nil
	}
	objects := filepath.Join(p.s.Path(p.c.Repo), "objects")
	abs, err := filepath.Abs(q)
	if err != nil || filepath.Dir(abs) != objects || !strings.HasPrefix(filepath.Base(abs), "tmp_objdir-incoming-") {
		return nil, apperr.E(apperr.Invalid, "unexpected quarantine directory")
	}
	return []string{"GIT_OBJECT_DIRECTORY=" + abs, "GIT_ALTERNATE_OBJECT_DIRECTORIES=" + objects, "GIT_QUARANTINE_PATH=" + abs}, nil
}
