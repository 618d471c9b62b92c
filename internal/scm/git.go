package scm

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/rampartsec/rampart/internal/apperr"
)

// zeroID is the object id git uses for "no object" in ref updates.
const zeroID = "0000000000000000000000000000000000000000"

func isZero(id string) bool { return strings.Trim(id, "0") == "" }

// gitEnv is the environment of every git process: no system or user
// configuration (the server's ~/.gitconfig must not change what a push
// does), no prompts, stable messages.
func gitEnv(extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.TempDir(),
		"LANG=C", "LC_ALL=C",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_NO_REPLACE_OBJECTS=1",
	}
	return append(env, extra...)
}

// maxGitOutput bounds what run reads from one git command.
const maxGitOutput = 64 << 20

// run runs git in dir with extra environment and returns its standard
// output. A failure carries git's standard error (for logs).
func (s *Service) run(ctx context.Context, dir string, env []string, stdin io.Reader, args ...string) ([]byte, error) {
	if err := s.available(); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, s.gitBin, args...)
	cmd.Dir = dir
	cmd.Env = gitEnv(env...)
	cmd.Stdin = stdin
	var out limitedBuffer
	out.max = maxGitOutput
	var errb limitedBuffer
	errb.max = 16 << 10
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return out.Bytes(), &gitError{args: args, err: err, stderr: strings.TrimSpace(errb.String())}
	}
	if out.truncated {
		return nil, apperr.E(apperr.TooLarge, "git output exceeds %d bytes", maxGitOutput)
	}
	return out.Bytes(), nil
}

// gitError is a failed git command; its text is for logs.
type gitError struct {
	args   []string
	err    error
	stderr string
}

func (e *gitError) Error() string {
	return fmt.Sprintf("git %s: %v: %s", strings.Join(e.args, " "), e.err, e.stderr)
}

func (e *gitError) Unwrap() error { return e.err }

// exitCode returns the exit code of a failed git command (-1 otherwise).
func exitCode(err error) int {
	var ee *exec.ExitError
	if ge, ok := err.(*gitError); ok {
		err = ge.err
	}
	if e, ok := err.(*exec.ExitError); ok {
		ee = e
		return ee.ExitCode()
	}
	return -1
}

// limitedBuffer keeps at most max bytes.
type limitedBuffer struct {
	bytes.Buffer
	max       int
	truncated bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room < len(p) {
		if room > 0 {
			b.Buffer.Write(p[:room])
		}
		b.truncated = true
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

// gitIn runs git in a repository.
func (s *Service) gitIn(ctx context.Context, r Repo, args ...string) ([]byte, error) {
	return s.run(ctx, s.Path(r), nil, nil, args...)
}

// refs returns a repository's branches and tags: full ref name → object id.
func (s *Service) refsAt(ctx context.Context, dir string, env []string) (map[string]string, error) {
	out, err := s.run(ctx, dir, env, nil, "for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/", "refs/tags/")
	if err != nil {
		return nil, err
	}
	refs := map[string]string{}
	for line := range strings.Lines(string(out)) {
		id, name, ok := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
		if ok {
			refs[name] = id
		}
	}
	return refs, nil
}

// resolveCommit returns the commit id rev names in dir, or NotFound.
func (s *Service) resolveCommit(ctx context.Context, dir string, env []string, rev string) (string, error) {
	if rev == "" || strings.HasPrefix(rev, "-") || strings.ContainsAny(rev, "\x00\n\r ") {
		return "", apperr.E(apperr.Invalid, "invalid revision %q", clip(rev, 80))
	}
	out, err := s.run(ctx, dir, env, nil, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
	if err != nil {
		if exitCode(err) > 0 {
			return "", apperr.E(apperr.NotFound, "revision %q not found", clip(rev, 80))
		}
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// isAncestor reports whether commit a is an ancestor of (or equal to) b.
func (s *Service) isAncestor(ctx context.Context, dir string, env []string, a, b string) (bool, error) {
	_, err := s.run(ctx, dir, env, nil, "merge-base", "--is-ancestor", a, b)
	if err == nil {
		return true, nil
	}
	if exitCode(err) == 1 {
		return false, nil
	}
	return false, err
}
