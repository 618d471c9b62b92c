package app

import (
	"context"

	"github.com/rampartsec/rampart/internal/scm"
)

// scmRepos tells boards and alerts where scm keeps a repository and which
// branch is its default.
type scmRepos struct{ scm *scm.Service }

// RepoPath returns the bare directory and default branch of repository id.
func (r scmRepos) RepoPath(ctx context.Context, id int64) (path, defaultBranch string, err error) {
	repo, err := r.scm.RepoByID(ctx, id)
	if err != nil {
		return "", "", err
	}
	return r.scm.Path(repo), repo.DefaultBranch, nil
}
