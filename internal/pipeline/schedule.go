package pipeline

import (
	"context"
	"strconv"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/rampartsec/rampart/internal/scm"
	"github.com/rampartsec/rampart/internal/store"
)

// syncSchedules records the schedules of the default branch's definition
// at sha (replacing the repository's previous ones).
func (s *Service) syncSchedules(ctx context.Context, repo scm.Repo, sha string) error {
	data, found, err := readDefinition(ctx, s.d.Repos.Path(repo), sha)
	if err != nil {
		return err
	}
	var scheds []Schedule
	if found {
		if def, err := Parse(data); err == nil {
			scheds = def.On.Schedules
		}
	}
	now := s.now().UTC()
	return s.d.DB.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM pipeline_schedules WHERE repo_id = ?", repo.ID); err != nil {
			return err
		}
		for i, sc := range scheds {
			branch := sc.Branch
			if branch == "" {
				branch = repo.DefaultBranch
			}
			if _, err := tx.Exec(ctx, "INSERT INTO pipeline_schedules (repo_id, idx, cron, branch, next_at) VALUES (?, ?, ?, ?, ?)",
				repo.ID, i, sc.Cron, branch, store.Time(sc.Next(now))); err != nil {
				return err
			}
		}
		return nil
	})
}

// runSchedules starts the runs of due schedules. Each due time starts at
// most one run (the trigger key names it), so replicas or a restart do not
// double it.
func (s *Service) runSchedules(ctx context.Context) error {
	now := s.now().UTC()
	rows, err := s.d.DB.Query(ctx, "SELECT id, repo_id, idx, cron, branch, next_at FROM pipeline_schedules WHERE next_at <= ?", store.Time(now))
	if err != nil {
		return err
	}
	type due struct {
		id, repoID int64
		idx        int
		cron       string
		branch     string
		at         time.Time
	}
	var dues []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.id, &d.repoID, &d.idx, &d.cron, &d.branch, store.TimeDest(&d.at)); err != nil {
			rows.Close()
			return err
		}
		dues = append(dues, d)
	}
	rows.Close()
	for _, d := range dues {
		spec, err := cron.ParseStandard(d.cron)
		if err != nil {
			continue
		}
		if _, err := s.d.DB.Exec(ctx, "UPDATE pipeline_schedules SET next_at = ? WHERE id = ?", store.Time(spec.Next(now)), d.id); err != nil {
			return err
		}
		repo, err := s.d.Repos.RepoByID(ctx, d.repoID)
		if err != nil {
			continue
		}
		_, sha, err := resolveRef(ctx, s.d.Repos.Path(repo), "refs/heads/"+d.branch)
		if err != nil {
			s.log.Warn("scheduled run: branch", "repo", repo.FullName(), "branch", d.branch, "err", err)
			continue
		}
		key := "schedule:" + strconv.FormatInt(d.repoID, 10) + ":" + strconv.Itoa(d.idx) + ":" + strconv.FormatInt(d.at.Unix(), 10)
		if _, err := s.trigger(ctx, trigger{repo: repo, key: key, event: EventSchedule, ref: "refs/heads/" + d.branch, sha: sha,
			actor: systemActor, rerunOf: 0, manual: false, scheduled: true}); err != nil {
			s.log.Warn("scheduled run", "repo", repo.FullName(), "err", err)
		}
	}
	return nil
}
