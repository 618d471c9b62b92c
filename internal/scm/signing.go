package scm

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/rampartsec/rampart/internal/apperr"
)

// maxVerifiedCommits bounds the commits one update may bring to a branch
// that requires signatures.
const maxVerifiedCommits = 1000

// unsignedCommits returns the commits of an update that are not signed by
// an SSH key registered in Rampart (short ids, at most ten listed).
func (s *Service) unsignedCommits(ctx context.Context, env []string, r Repo, u refUpdate) ([]string, error) {
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		return nil, apperr.E(apperr.Unavailable, "signed commits cannot be verified: ssh-keygen is not installed on the server")
	}
	args := []string{"rev-list", "--max-count=" + itoa(maxVerifiedCommits+1), u.New, "--not", "--branches", "--tags"}
	if !u.create() {
		args = append(args, u.Old)
	}
	out, err := s.run(ctx, s.Path(r), env, nil, append(args, "--")...)
	if err != nil {
		return nil, err
	}
	ids := strings.Fields(string(out))
	if len(ids) > maxVerifiedCommits {
		return nil, apperr.E(apperr.Invalid, "too many new commits (over %d) to verify their signatures in one push", maxVerifiedCommits)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	signers, err := s.allowedSigners(ctx)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(s.tmpDir, "signers-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "allowed_signers")
	if err := os.WriteFile(file, []byte(signers), 0o600); err != nil {
		return nil, err
	}
	var bad []string
	for _, id := range ids {
		_, err := s.run(ctx, s.Path(r), env, nil, "-c", "gpg.format=ssh", "-c", "gpg.ssh.program="+keygen,
			"-c", "gpg.ssh.allowedSignersFile="+file, "verify-commit", id)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			bad = append(bad, short(id))
			if len(bad) == 10 {
				bad = append(bad, "…")
				break
			}
		}
	}
	return bad, nil
}

// allowedSigners lists every key of an enabled user in ssh-keygen's
// allowed signers format, each under its user's name.
func (s *Service) allowedSigners(ctx context.Context) (string, error) {
	rows, err := s.db.Query(ctx, "SELECT user_id, public_key FROM ssh_keys ORDER BY id")
	if err != nil {
		return "", err
	}
	type key struct {
		user int64
		text string
	}
	var keys []key
	for rows.Next() {
		var k key
		if err := rows.Scan(&k.user, &k.text); err != nil {
			rows.Close()
			return "", err
		}
		keys = append(keys, k)
	}
	if err := rows.Close(); err != nil {
		return "", err
	}
	names := map[int64]string{}
	var b strings.Builder
	for _, k := range keys {
		name, ok := names[k.user]
		if !ok {
			u, err := s.ids.User(ctx, k.user)
			if err != nil {
				return "", err
			}
			if u.Disabled {
				name = ""
			} else {
				name = u.Username
			}
			names[k.user] = name
		}
		if name != "" {
			b.WriteString(name + ` namespaces="git" ` + k.text + "\n")
		}
	}
	return b.String(), nil
}
