package scm

import (
	"context"
	"net/url"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/store"
)

// PushEvent is the payload of scm.push (see doc.go).
type PushEvent struct {
	Repo          string   `json:"repo"`
	RepoID        int64    `json:"repo_id"`
	Ref           string   `json:"ref"`
	Before        string   `json:"before"`
	After         string   `json:"after"`
	DefaultBranch bool     `json:"default_branch"`
	Pusher        string   `json:"pusher"`
	Commits       []Commit `json:"commits"`
}

// postReceive records the refs receive-pack updated: one audit entry and
// one scm.push event per ref, and the pull requests whose branch moved,
// in one transaction.
func (p *pushSession) postReceive(req hookRequest) []string {
	s, r := p.s, p.c.Repo
	ctx := context.WithoutCancel(p.ctx) // the refs moved: record it even if the client left
	var lines []string
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		lines = lines[:0]
		for _, u := range req.Updates {
			ev := PushEvent{Repo: r.FullName(), RepoID: r.ID, Ref: u.Ref, Before: u.Old, After: u.New,
				DefaultBranch: u.Ref == "refs/heads/"+r.DefaultBranch, Pusher: p.c.Who.User.Username,
				Commits: p.commits[u.Ref]}
			if ev.Commits == nil {
				ev.Commits = []Commit{}
			}
			action := "repo.push"
			switch {
			case u.delete():
				action = "repo.push.delete"
			case u.create():
				action = "repo.push.create"
			}
			details := map[string]any{"ref": u.Ref, "before": u.Old, "after": u.New, "commits": len(ev.Commits), "via": p.c.Who.Via}
			if p.bypass != nil {
				details["secret_bypass"] = true
			}
			if err := s.audit.AppendTx(ctx, tx, audit.Record{Action: action, OrgID: r.OrgID, Target: r.target(), Details: details}); err != nil {
				return err
			}
			if err := s.events.Publish(ctx, tx, EventPush, ev); err != nil {
				return err
			}
			if branch, ok := u.branch(); ok && !u.delete() {
				n, err := s.syncPulls(ctx, tx, r, branch, u.New)
				if err != nil {
					return err
				}
				if n == 0 && u.create() && branch != r.DefaultBranch {
					lines = append(lines, "", "Create a pull request for '"+branch+"':",
						"  "+s.WebURL(r)+"/pulls/new?head="+url.QueryEscape(branch), "")
				}
			}
		}
		return nil
	})
	if err != nil {
		s.log.ErrorContext(ctx, "record push", "repo", r.FullName(), "err", err)
		return []string{"rampart: the push landed but recording it failed; tell your administrator (the server log has the details)"}
	}
	return lines
}
