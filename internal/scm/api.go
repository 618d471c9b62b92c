package scm

import (
	"net/http"
	"strconv"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/identity"
)

// Wire types of scm's API.

// RepoJSON is a repository as the API shows it.
type RepoJSON struct {
	Org           string    `json:"org"`
	Name          string    `json:"name"`
	FullName      string    `json:"full_name"`
	Description   string    `json:"description"`
	Project       string    `json:"project,omitempty"`
	DefaultBranch string    `json:"default_branch"`
	Public        bool      `json:"public"`
	CloneURL      string    `json:"clone_url"`
	SSHURL        string    `json:"ssh_url,omitempty"`
	HTMLURL       string    `json:"html_url"`
	CreatedAt     time.Time `json:"created_at"`
}

// CreateRepoRequest creates a repository.
type CreateRepoRequest struct {
	Name          string `json:"name"`
	Description   string `json:"description,omitempty"`
	Project       string `json:"project,omitempty"`
	DefaultBranch string `json:"default_branch,omitempty"`
	Public        bool   `json:"public,omitempty"`
}

// UpdateRepoRequest changes repository settings.
type UpdateRepoRequest struct {
	Description   *string `json:"description,omitempty"`
	DefaultBranch *string `json:"default_branch,omitempty"`
	Public        *bool   `json:"public,omitempty"`
}

// BranchJSON is a branch.
type BranchJSON struct {
	Name      string `json:"name"`
	SHA       string `json:"sha"`
	Protected bool   `json:"protected"`
}

// ProtectionJSON is a branch protection rule.
type ProtectionJSON struct {
	Pattern           string    `json:"pattern"`
	RequirePR         bool      `json:"require_pull_request"`
	RequiredChecks    []string  `json:"required_checks"`
	RequiredApprovals int       `json:"required_approvals"`
	DismissStale      bool      `json:"dismiss_stale_approvals"`
	AllowForcePush    bool      `json:"allow_force_push"`
	AllowDeletion     bool      `json:"allow_deletion"`
	RequireSigned     bool      `json:"require_signed_commits"`
	CreatedAt         time.Time `json:"created_at,omitzero"`
}

// PullJSON is a pull request.
type PullJSON struct {
	Number      int64      `json:"number"`
	Title       string     `json:"title"`
	Body        string     `json:"body"`
	State       string     `json:"state"`
	Author      string     `json:"author"`
	Base        string     `json:"base"`
	Head        string     `json:"head"`
	HeadSHA     string     `json:"head_sha"`
	MergeCommit string     `json:"merge_commit,omitempty"`
	MergedBy    string     `json:"merged_by,omitempty"`
	MergedAt    *time.Time `json:"merged_at,omitempty"`
	HTMLURL     string     `json:"html_url"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	// Mergeability, for a single pull request.
	Mergeable *bool    `json:"mergeable,omitempty"`
	Conflicts []string `json:"conflicts,omitempty"`
	Blockers  []string `json:"blockers,omitempty"`
	Approvals *int     `json:"approvals,omitempty"`
}

// CreatePullRequest opens a pull request.
type CreatePullRequest struct {
	Title string `json:"title"`
	Body  string `json:"body,omitempty"`
	Head  string `json:"head"`
	Base  string `json:"base,omitempty"`
}

// UpdatePullRequest edits a pull request or closes / reopens it.
type UpdatePullRequest struct {
	Title *string `json:"title,omitempty"`
	Body  *string `json:"body,omitempty"`
	// State "closed" closes, "open" reopens.
	State *string `json:"state,omitempty"`
}

// ReviewRequest reviews a pull request.
type ReviewRequest struct {
	State string `json:"state"` // approved, changes_requested, commented
	Body  string `json:"body,omitempty"`
}

// ReviewJSON is a review.
type ReviewJSON struct {
	ID        int64     `json:"id"`
	Author    string    `json:"author"`
	State     string    `json:"state"`
	Body      string    `json:"body"`
	CommitSHA string    `json:"commit_sha"`
	Dismissed bool      `json:"dismissed"`
	CreatedAt time.Time `json:"created_at"`
}

// CommentRequest comments on a pull request, or on one line of its diff.
type CommentRequest struct {
	Body string `json:"body"`
	Path string `json:"path,omitempty"`
	Line int    `json:"line,omitempty"`
	Side string `json:"side,omitempty"` // new (default) or old
}

// CommentJSON is a comment.
type CommentJSON struct {
	ID        int64     `json:"id"`
	Author    string    `json:"author"`
	Body      string    `json:"body"`
	Path      string    `json:"path,omitempty"`
	Line      int       `json:"line,omitempty"`
	Side      string    `json:"side,omitempty"`
	CommitSHA string    `json:"commit_sha"`
	CreatedAt time.Time `json:"created_at"`
}

// MergeRequest merges a pull request.
type MergeRequest struct {
	Strategy string `json:"strategy,omitempty"` // merge (default), squash, rebase
	Message  string `json:"message,omitempty"`
}

// FileJSON is one file of a diff.
type FileJSON struct {
	Path      string `json:"path"`
	OldPath   string `json:"old_path,omitempty"`
	Status    string `json:"status"`
	Additions int    `json:"additions"`
	Deletions int    `json:"deletions"`
	Binary    bool   `json:"binary,omitempty"`
}

// FindingJSON is a scanner finding a pull request introduces.
type FindingJSON struct {
	Kind     string `json:"kind"`
	RuleID   string `json:"rule_id"`
	Title    string `json:"title"`
	Severity string `json:"severity"`
	Path     string `json:"path"`
	Line     int    `json:"line,omitempty"`
	Commit   string `json:"commit,omitempty"`
}

// StatusRequest posts a check state for a commit.
type StatusRequest struct {
	State       string `json:"state"`
	Context     string `json:"context,omitempty"`
	Description string `json:"description,omitempty"`
	TargetURL   string `json:"target_url,omitempty"`
}

// StatusJSON is a check state.
type StatusJSON struct {
	SHA         string    `json:"sha"`
	Context     string    `json:"context"`
	State       string    `json:"state"`
	Description string    `json:"description,omitempty"`
	TargetURL   string    `json:"target_url,omitempty"`
	Creator     string    `json:"creator"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// CommitJSON is a commit.
type CommitJSON struct {
	ID          string    `json:"id"`
	Message     string    `json:"message"`
	AuthorName  string    `json:"author_name"`
	AuthorEmail string    `json:"author_email"`
	Timestamp   time.Time `json:"timestamp"`
}

// WebhookRequest creates a webhook.
type WebhookRequest struct {
	URL    string   `json:"url"`
	Secret string   `json:"secret,omitempty"`
	Events []string `json:"events,omitempty"`
}

// WebhookJSON is a webhook (never its secret).
type WebhookJSON struct {
	ID        int64     `json:"id"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	Active    bool      `json:"active"`
	HasSecret bool      `json:"has_secret"`
	Repo      string    `json:"repo,omitempty"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

// DeliveryJSON is an entry of a webhook's delivery log.
type DeliveryJSON struct {
	ID           int64      `json:"id"`
	GUID         string     `json:"guid"`
	Event        string     `json:"event"`
	State        string     `json:"state"`
	Attempts     int        `json:"attempts"`
	StatusCode   int        `json:"status_code,omitempty"`
	Error        string     `json:"error,omitempty"`
	Response     string     `json:"response,omitempty"`
	DurationMS   int64      `json:"duration_ms"`
	NextAttempt  *time.Time `json:"next_attempt_at,omitempty"`
	RedeliveryOf int64      `json:"redelivery_of,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	DeliveredAt  *time.Time `json:"delivered_at,omitempty"`
	Payload      string     `json:"payload,omitempty"`
}

// SSHKeyRequest registers an SSH public key.
type SSHKeyRequest struct {
	Name string `json:"name,omitempty"`
	Key  string `json:"key"`
}

// SSHKeyJSON is a registered key.
type SSHKeyJSON struct {
	ID          int64      `json:"id"`
	Name        string     `json:"name"`
	Type        string     `json:"type"`
	Fingerprint string     `json:"fingerprint"`
	PublicKey   string     `json:"public_key"`
	CreatedAt   time.Time  `json:"created_at"`
	LastUsedAt  *time.Time `json:"last_used_at,omitempty"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// RepoJSONOf converts a repository.
func (s *Service) RepoJSONOf(r Repo, project string) RepoJSON {
	h, sh := s.CloneURLs(r)
	return RepoJSON{Org: r.Org, Name: r.Name, FullName: r.FullName(), Description: r.Description, Project: project,
		DefaultBranch: r.DefaultBranch, Public: r.Public, CloneURL: h, SSHURL: sh, HTMLURL: s.WebURL(r), CreatedAt: r.CreatedAt}
}

func (s *Service) pullJSON(r Repo, pr PullRequest) PullJSON {
	return PullJSON{Number: pr.Number, Title: pr.Title, Body: pr.Body, State: pr.State, Author: pr.Author, Base: pr.Base, Head: pr.Head,
		HeadSHA: pr.HeadSHA, MergeCommit: pr.MergeCommit, MergedBy: pr.MergedBy, MergedAt: optTime(pr.MergedAt),
		HTMLURL: s.PullURL(r, pr.Number), CreatedAt: pr.CreatedAt, UpdatedAt: pr.UpdatedAt}
}

func protectionJSON(p Protection) ProtectionJSON {
	checks := p.RequiredChecks
	if checks == nil {
		checks = []string{}
	}
	return ProtectionJSON{Pattern: p.Pattern, RequirePR: p.RequirePR, RequiredChecks: checks, RequiredApprovals: p.RequiredApprovals,
		DismissStale: p.DismissStale, AllowForcePush: p.AllowForcePush, AllowDeletion: p.AllowDeletion, RequireSigned: p.RequireSigned,
		CreatedAt: p.CreatedAt}
}

func statusJSON(st Status) StatusJSON {
	return StatusJSON{SHA: st.SHA, Context: st.Context, State: st.State, Description: st.Description, TargetURL: st.TargetURL,
		Creator: st.Creator, UpdatedAt: st.UpdatedAt}
}

func commitJSON(c Commit) CommitJSON {
	return CommitJSON{ID: c.ID, Message: c.Message, AuthorName: c.AuthorName, AuthorEmail: c.AuthorEmail, Timestamp: c.Timestamp}
}

func deliveryJSON(d Delivery, withPayload bool) DeliveryJSON {
	j := DeliveryJSON{ID: d.ID, GUID: d.GUID, Event: d.Event, State: d.State, Attempts: d.Attempts, StatusCode: d.StatusCode,
		Error: d.Error, Response: d.Response, DurationMS: d.Duration.Milliseconds(), RedeliveryOf: d.RedeliveryOf,
		CreatedAt: d.CreatedAt, DeliveredAt: optTime(d.DeliveredAt)}
	if d.State == DeliveryPending || d.State == DeliveryRetrying {
		j.NextAttempt = optTime(d.NextAttempt)
	}
	if withPayload {
		j.Payload = d.Payload
	}
	return j
}

func keyJSON(k SSHKey) SSHKeyJSON {
	return SSHKeyJSON{ID: k.ID, Name: k.Name, Type: k.Type, Fingerprint: k.Fingerprint, PublicKey: k.PublicKey, CreatedAt: k.CreatedAt,
		LastUsedAt: optTime(k.LastUsedAt)}
}

// Routes are scm's API routes, for httpapi.Deps.Extra. Routes under a
// repository are checked by the handler against the repository itself
// (its project's grants apply, a public repository is readable by
// anyone); the adapter's check is a formality there (authz.Public).
func (s *Service) Routes() []httpapi.Route {
	const (
		org  = httpapi.Prefix + "/orgs/{org}"
		repo = org + "/repos/{repo}"
		pull = repo + "/pulls/{number}"
	)
	on := func(a authz.Action, h func(c *httpapi.Call, r Repo) error) func(c *httpapi.Call) error {
		return s.withRepo(a, h)
	}
	return []httpapi.Route{
		{Method: "GET", Path: org + "/repos", Tag: "repos", Summary: "List the org's repositories",
			Action: authz.OrgRead, On: httpapi.OnOrg, Response: []RepoJSON{}, Handler: s.apiListRepos},
		{Method: "POST", Path: org + "/repos", Tag: "repos", Summary: "Create a repository (maintainers of the org or of the project named)",
			Action: authz.Public, Request: CreateRepoRequest{}, Response: RepoJSON{}, Status: http.StatusCreated, Handler: s.apiCreateRepo},
		{Method: "GET", Path: repo, Tag: "repos", Summary: "Show a repository with its clone URLs (readers)",
			Action: authz.Public, Response: RepoJSON{}, Handler: on(authz.RepoRead, s.apiGetRepo)},
		{Method: "PATCH", Path: repo, Tag: "repos", Summary: "Change a repository's description, default branch or visibility (maintainers)",
			Action: authz.Public, Request: UpdateRepoRequest{}, Response: RepoJSON{}, Handler: on(authz.RepoAdmin, s.apiUpdateRepo)},
		{Method: "DELETE", Path: repo, Tag: "repos", Summary: "Delete a repository with its history (owners)",
			Action: authz.Public, Status: http.StatusNoContent, Handler: on(authz.RepoDelete, s.apiDeleteRepo)},
		{Method: "GET", Path: repo + "/branches", Tag: "repos", Summary: "List branches (readers)",
			Action: authz.Public, Response: []BranchJSON{}, Handler: on(authz.RepoRead, s.apiBranches)},
		{Method: "GET", Path: repo + "/commits", Tag: "repos", Summary: "List commits of ?ref= (default branch), newest first (readers)",
			Action: authz.Public, Response: []CommitJSON{}, Handler: on(authz.RepoRead, s.apiCommits)},
		{Method: "GET", Path: repo + "/protections", Tag: "repos", Summary: "List branch protection rules (readers)",
			Action: authz.Public, Response: []ProtectionJSON{}, Handler: on(authz.RepoRead, s.apiProtections)},
		{Method: "PUT", Path: repo + "/protections", Tag: "repos", Summary: "Create or replace the protection rule of a branch pattern (maintainers)",
			Action: authz.Public, Request: ProtectionJSON{}, Response: ProtectionJSON{}, Handler: on(authz.RepoAdmin, s.apiSetProtection)},
		{Method: "DELETE", Path: repo + "/protections", Tag: "repos", Summary: "Delete the protection rule of ?pattern= (maintainers)",
			Action: authz.Public, Status: http.StatusNoContent, Handler: on(authz.RepoAdmin, s.apiDeleteProtection)},
		{Method: "GET", Path: repo + "/statuses/{sha}", Tag: "checks", Summary: "List the check states of a commit (readers)",
			Action: authz.Public, Response: []StatusJSON{}, Handler: on(authz.RepoRead, s.apiStatuses)},
		{Method: "POST", Path: repo + "/statuses/{sha}", Tag: "checks", Summary: "Post the state of a check on a commit (pipelines, external CI; developers)",
			Action: authz.Public, Request: StatusRequest{}, Response: StatusJSON{}, Status: http.StatusCreated, Handler: on(authz.RepoWrite, s.apiSetStatus)},

		{Method: "GET", Path: repo + "/pulls", Tag: "pulls", Summary: "List pull requests (?state=open|closed|merged; readers)",
			Action: authz.Public, Response: []PullJSON{}, Handler: on(authz.RepoRead, s.apiPulls)},
		{Method: "POST", Path: repo + "/pulls", Tag: "pulls", Summary: "Open a pull request (developers)",
			Action: authz.Public, Request: CreatePullRequest{}, Response: PullJSON{}, Status: http.StatusCreated, Handler: on(authz.RepoWrite, s.apiOpenPull)},
		{Method: "GET", Path: pull, Tag: "pulls", Summary: "Show a pull request with its mergeability (readers)",
			Action: authz.Public, Response: PullJSON{}, Handler: on(authz.RepoRead, s.apiGetPull)},
		{Method: "PATCH", Path: pull, Tag: "pulls", Summary: "Edit a pull request, close it (state closed) or reopen it (state open) (developers)",
			Action: authz.Public, Request: UpdatePullRequest{}, Response: PullJSON{}, Handler: on(authz.RepoWrite, s.apiUpdatePull)},
		{Method: "GET", Path: pull + "/files", Tag: "pulls", Summary: "List the files a pull request changes (readers)",
			Action: authz.Public, Response: []FileJSON{}, Handler: on(authz.RepoRead, s.apiPullFiles)},
		{Method: "GET", Path: pull + "/findings", Tag: "pulls", Summary: "List the scanner findings a pull request introduces (readers)",
			Action: authz.Public, Response: []FindingJSON{}, Handler: on(authz.RepoRead, s.apiPullFindings)},
		{Method: "GET", Path: pull + "/reviews", Tag: "pulls", Summary: "List reviews (readers)",
			Action: authz.Public, Response: []ReviewJSON{}, Handler: on(authz.RepoRead, s.apiReviews)},
		{Method: "POST", Path: pull + "/reviews", Tag: "pulls", Summary: "Approve, request changes or comment (developers; not on your own)",
			Action: authz.Public, Request: ReviewRequest{}, Response: ReviewJSON{}, Status: http.StatusCreated, Handler: on(authz.RepoWrite, s.apiReview)},
		{Method: "GET", Path: pull + "/comments", Tag: "pulls", Summary: "List comments (readers)",
			Action: authz.Public, Response: []CommentJSON{}, Handler: on(authz.RepoRead, s.apiComments)},
		{Method: "POST", Path: pull + "/comments", Tag: "pulls", Summary: "Comment on a pull request or one line of its diff (developers)",
			Action: authz.Public, Request: CommentRequest{}, Response: CommentJSON{}, Status: http.StatusCreated, Handler: on(authz.RepoWrite, s.apiComment)},
		{Method: "PUT", Path: pull + "/merge", Tag: "pulls", Summary: "Merge a pull request (merge, squash or rebase) once protection allows (developers)",
			Action: authz.Public, Request: MergeRequest{}, Response: PullJSON{}, Handler: on(authz.RepoWrite, s.apiMerge)},

		{Method: "GET", Path: repo + "/hooks", Tag: "webhooks", Summary: "List the repository's webhooks (maintainers)",
			Action: authz.Public, Response: []WebhookJSON{}, Handler: on(authz.RepoAdmin, s.apiRepoHooks)},
		{Method: "POST", Path: repo + "/hooks", Tag: "webhooks", Summary: "Add a webhook for push and pull_request events (maintainers)",
			Action: authz.Public, Request: WebhookRequest{}, Response: WebhookJSON{}, Status: http.StatusCreated, Handler: on(authz.RepoAdmin, s.apiCreateRepoHook)},
		{Method: "DELETE", Path: repo + "/hooks/{id}", Tag: "webhooks", Summary: "Delete a webhook (maintainers)",
			Action: authz.Public, Status: http.StatusNoContent, Handler: on(authz.RepoAdmin, s.apiDeleteRepoHook)},
		{Method: "GET", Path: repo + "/hooks/{id}/deliveries", Tag: "webhooks", Summary: "A webhook's delivery log, newest first (maintainers)",
			Action: authz.Public, Response: []DeliveryJSON{}, Handler: on(authz.RepoAdmin, s.apiRepoDeliveries)},
		{Method: "POST", Path: repo + "/hooks/{id}/deliveries/{delivery}/redeliver", Tag: "webhooks", Summary: "Send a delivery again (maintainers)",
			Action: authz.Public, Response: DeliveryJSON{}, Status: http.StatusAccepted, Handler: on(authz.RepoAdmin, s.apiRepoRedeliver)},

		{Method: "GET", Path: org + "/hooks", Tag: "webhooks", Summary: "List org-wide webhooks (owners)",
			Action: authz.OrgHooksAdmin, On: httpapi.OnOrg, Response: []WebhookJSON{}, Handler: s.apiOrgHooks},
		{Method: "POST", Path: org + "/hooks", Tag: "webhooks", Summary: "Add an org-wide webhook: events of every repository (owners)",
			Action: authz.OrgHooksAdmin, On: httpapi.OnOrg, Request: WebhookRequest{}, Response: WebhookJSON{}, Status: http.StatusCreated, Handler: s.apiCreateOrgHook},
		{Method: "DELETE", Path: org + "/hooks/{id}", Tag: "webhooks", Summary: "Delete an org-wide webhook (owners)",
			Action: authz.OrgHooksAdmin, On: httpapi.OnOrg, Status: http.StatusNoContent, Handler: s.apiDeleteOrgHook},
		{Method: "GET", Path: org + "/hooks/{id}/deliveries", Tag: "webhooks", Summary: "An org-wide webhook's delivery log (owners)",
			Action: authz.OrgHooksAdmin, On: httpapi.OnOrg, Response: []DeliveryJSON{}, Handler: s.apiOrgDeliveries},
		{Method: "POST", Path: org + "/hooks/{id}/deliveries/{delivery}/redeliver", Tag: "webhooks", Summary: "Send an org webhook's delivery again (owners)",
			Action: authz.OrgHooksAdmin, On: httpapi.OnOrg, Response: DeliveryJSON{}, Status: http.StatusAccepted, Handler: s.apiOrgRedeliver},

		{Method: "GET", Path: httpapi.Prefix + "/user/ssh-keys", Tag: "account", Summary: "List your SSH keys",
			Action: authz.SelfRead, On: httpapi.OnSelf, Response: []SSHKeyJSON{}, Handler: s.apiSSHKeys},
		{Method: "POST", Path: httpapi.Prefix + "/user/ssh-keys", Tag: "account", Summary: "Register an SSH public key (git over SSH, commit signatures)",
			Action: authz.SelfWrite, On: httpapi.OnSelf, Request: SSHKeyRequest{}, Response: SSHKeyJSON{}, Status: http.StatusCreated, Handler: s.apiAddSSHKey},
		{Method: "DELETE", Path: httpapi.Prefix + "/user/ssh-keys/{id}", Tag: "account", Summary: "Remove one of your SSH keys",
			Action: authz.SelfWrite, On: httpapi.OnSelf, Status: http.StatusNoContent, Handler: s.apiRemoveSSHKey},
	}
}

// withRepo resolves {org}/{repo} and authorises a on it before h runs.
func (s *Service) withRepo(a authz.Action, h func(c *httpapi.Call, r Repo) error) func(c *httpapi.Call) error {
	return func(c *httpapi.Call) error {
		if !c.P.Subject.Authenticated() && a != authz.RepoRead {
			return apperr.E(apperr.Unauthenticated, "sign in first")
		}
		r, err := s.Repo(c.R.Context(), c.R.PathValue("org"), c.R.PathValue("repo"))
		if err != nil {
			if !c.P.Subject.Authenticated() {
				return apperr.E(apperr.Unauthenticated, "sign in first")
			}
			return err
		}
		if err := s.Authorize(c.P.Subject, a, r); err != nil {
			return err
		}
		return h(c, r)
	}
}

func (s *Service) projectName(c *httpapi.Call, r Repo) string {
	if r.ProjectID == 0 {
		return ""
	}
	ps, err := c.IDs().Projects(c.R.Context(), r.OrgID)
	if err != nil {
		return ""
	}
	for _, p := range ps {
		if p.ID == r.ProjectID {
			return p.Name
		}
	}
	return ""
}

func (s *Service) apiListRepos(c *httpapi.Call) error {
	rs, err := s.Repos(c.R.Context(), c.Org)
	if err != nil {
		return err
	}
	out := []RepoJSON{}
	for _, r := range rs {
		if s.Authorize(c.P.Subject, authz.RepoRead, r) == nil {
			out = append(out, s.RepoJSONOf(r, s.projectName(c, r)))
		}
	}
	return c.JSON(out)
}

func (s *Service) apiCreateRepo(c *httpapi.Call) error {
	if !c.P.Subject.Authenticated() {
		return apperr.E(apperr.Unauthenticated, "sign in first")
	}
	ctx := c.R.Context()
	o, err := c.IDs().Org(ctx, c.R.PathValue("org"))
	if err != nil {
		return err
	}
	var req CreateRepoRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	res := o.Resource()
	if req.Project != "" {
		p, err := c.IDs().Project(ctx, o.ID, req.Project)
		if err != nil {
			if authz.Check(c.P.Subject, authz.OrgRead, o.Resource()) != nil {
				return authz.Check(c.P.Subject, authz.RepoCreate, res)
			}
			return err
		}
		res = p.Resource(o)
	}
	if err := authz.Check(c.P.Subject, authz.RepoCreate, res); err != nil {
		return err
	}
	r, err := s.CreateRepo(ctx, o, NewRepo{Name: req.Name, Description: req.Description, Project: req.Project,
		DefaultBranch: req.DefaultBranch, Public: req.Public})
	if err != nil {
		return err
	}
	return c.JSON(s.RepoJSONOf(r, req.Project))
}

func (s *Service) apiGetRepo(c *httpapi.Call, r Repo) error {
	return c.JSON(s.RepoJSONOf(r, s.projectName(c, r)))
}

func (s *Service) apiUpdateRepo(c *httpapi.Call, r Repo) error {
	var req UpdateRepoRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	r, err := s.UpdateRepo(c.R.Context(), r, RepoUpdate{Description: req.Description, DefaultBranch: req.DefaultBranch, Public: req.Public})
	if err != nil {
		return err
	}
	return c.JSON(s.RepoJSONOf(r, s.projectName(c, r)))
}

func (s *Service) apiDeleteRepo(c *httpapi.Call, r Repo) error {
	if err := s.DeleteRepo(c.R.Context(), r); err != nil {
		return err
	}
	return c.NoContent()
}

func (s *Service) apiBranches(c *httpapi.Call, r Repo) error {
	bs, err := s.Branches(c.R.Context(), r)
	if err != nil {
		return err
	}
	out := []BranchJSON{}
	for _, b := range bs {
		out = append(out, BranchJSON(b))
	}
	return c.JSON(out)
}

func (s *Service) apiCommits(c *httpapi.Call, r Repo) error {
	limit, _ := strconv.Atoi(c.R.URL.Query().Get("limit"))
	if empty, err := s.Empty(c.R.Context(), r); err != nil {
		return err
	} else if empty {
		return c.JSON([]CommitJSON{})
	}
	cs, err := s.Log(c.R.Context(), r, c.R.URL.Query().Get("ref"), limit)
	if err != nil {
		return err
	}
	out := []CommitJSON{}
	for _, x := range cs {
		out = append(out, commitJSON(x))
	}
	return c.JSON(out)
}

func (s *Service) apiProtections(c *httpapi.Call, r Repo) error {
	ps, err := s.Protections(c.R.Context(), r)
	if err != nil {
		return err
	}
	out := []ProtectionJSON{}
	for _, p := range ps {
		out = append(out, protectionJSON(p))
	}
	return c.JSON(out)
}

func (s *Service) apiSetProtection(c *httpapi.Call, r Repo) error {
	var req ProtectionJSON
	if err := c.Decode(&req); err != nil {
		return err
	}
	p, err := s.SetProtection(c.R.Context(), r, Protection{Pattern: req.Pattern, RequirePR: req.RequirePR, RequiredChecks: req.RequiredChecks,
		RequiredApprovals: req.RequiredApprovals, DismissStale: req.DismissStale, AllowForcePush: req.AllowForcePush,
		AllowDeletion: req.AllowDeletion, RequireSigned: req.RequireSigned})
	if err != nil {
		return err
	}
	return c.JSON(protectionJSON(p))
}

func (s *Service) apiDeleteProtection(c *httpapi.Call, r Repo) error {
	pattern := c.R.URL.Query().Get("pattern")
	if pattern == "" {
		return apperr.InvalidField("pattern", "give ?pattern=")
	}
	if err := s.DeleteProtection(c.R.Context(), r, pattern); err != nil {
		return err
	}
	return c.NoContent()
}

func (s *Service) apiStatuses(c *httpapi.Call, r Repo) error {
	sts, err := s.Statuses(c.R.Context(), r, c.R.PathValue("sha"))
	if err != nil {
		return err
	}
	out := []StatusJSON{}
	for _, st := range sts {
		out = append(out, statusJSON(st))
	}
	return c.JSON(out)
}

func (s *Service) apiSetStatus(c *httpapi.Call, r Repo) error {
	var req StatusRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	st, err := s.SetStatus(c.R.Context(), r, Status{SHA: c.R.PathValue("sha"), State: req.State, Context: req.Context,
		Description: req.Description, TargetURL: req.TargetURL})
	if err != nil {
		return err
	}
	return c.JSON(statusJSON(st))
}

func (s *Service) apiPulls(c *httpapi.Call, r Repo) error {
	prs, err := s.Pulls(c.R.Context(), r, c.R.URL.Query().Get("state"), 0)
	if err != nil {
		return err
	}
	out := []PullJSON{}
	for _, pr := range prs {
		out = append(out, s.pullJSON(r, pr))
	}
	return c.JSON(out)
}

func (s *Service) apiOpenPull(c *httpapi.Call, r Repo) error {
	var req CreatePullRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	pr, err := s.OpenPull(c.R.Context(), r, NewPull(req))
	if err != nil {
		return err
	}
	return c.JSON(s.pullJSON(r, pr))
}

func pullNumber(c *httpapi.Call) (int64, error) {
	n, err := strconv.ParseInt(c.R.PathValue("number"), 10, 64)
	if err != nil || n <= 0 {
		return 0, apperr.InvalidField("number", "pull request number must be a positive number")
	}
	return n, nil
}

func (s *Service) pullOf(c *httpapi.Call, r Repo) (PullRequest, error) {
	n, err := pullNumber(c)
	if err != nil {
		return PullRequest{}, err
	}
	return s.Pull(c.R.Context(), r, n)
}

func (s *Service) apiGetPull(c *httpapi.Call, r Repo) error {
	pr, err := s.pullOf(c, r)
	if err != nil {
		return err
	}
	j := s.pullJSON(r, pr)
	if pr.State == PullOpen {
		m, err := s.MergeStatus(c.R.Context(), r, pr)
		if err != nil {
			return err
		}
		ok := m.CanMerge()
		j.Mergeable, j.Conflicts, j.Blockers, j.Approvals = &ok, m.Conflicts, m.Blockers, &m.Approvals
	}
	return c.JSON(j)
}

func (s *Service) apiUpdatePull(c *httpapi.Call, r Repo) error {
	var req UpdatePullRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	pr, err := s.pullOf(c, r)
	if err != nil {
		return err
	}
	ctx := c.R.Context()
	if req.Title != nil || req.Body != nil {
		if pr, err = s.EditPull(ctx, r, pr, req.Title, req.Body); err != nil {
			return err
		}
	}
	if req.State != nil {
		switch *req.State {
		case PullClosed:
			pr, err = s.ClosePull(ctx, r, pr)
		case PullOpen:
			pr, err = s.ReopenPull(ctx, r, pr)
		default:
			err = apperr.InvalidField("state", "state must be open or closed (merge with PUT …/merge)")
		}
		if err != nil {
			return err
		}
	}
	return c.JSON(s.pullJSON(r, pr))
}

func (s *Service) apiPullFiles(c *httpapi.Call, r Repo) error {
	pr, err := s.pullOf(c, r)
	if err != nil {
		return err
	}
	d, err := s.PullDiff(c.R.Context(), r, pr)
	if err != nil {
		return err
	}
	out := []FileJSON{}
	for _, f := range d.Files {
		j := FileJSON{Path: f.Path(), Status: f.Status, Additions: f.Added, Deletions: f.Deleted, Binary: f.Binary}
		if f.Status == FileRenamed {
			j.OldPath = f.OldPath
		}
		out = append(out, j)
	}
	return c.JSON(out)
}

func (s *Service) apiPullFindings(c *httpapi.Call, r Repo) error {
	pr, err := s.pullOf(c, r)
	if err != nil {
		return err
	}
	fs, err := s.PullFindings(c.R.Context(), r, pr)
	if err != nil {
		return err
	}
	out := []FindingJSON{}
	for _, f := range fs {
		out = append(out, FindingJSON{Kind: string(f.Kind), RuleID: f.RuleID, Title: f.Title, Severity: f.Severity.String(),
			Path: f.Location.Path, Line: f.Location.StartLine, Commit: f.Location.Commit})
	}
	return c.JSON(out)
}

func reviewJSON(rv Review) ReviewJSON {
	return ReviewJSON{ID: rv.ID, Author: rv.Author, State: rv.State, Body: rv.Body, CommitSHA: rv.CommitSHA, Dismissed: rv.Dismissed, CreatedAt: rv.CreatedAt}
}

func commentJSON(x Comment) CommentJSON {
	return CommentJSON{ID: x.ID, Author: x.Author, Body: x.Body, Path: x.Path, Line: x.Line, Side: x.Side, CommitSHA: x.CommitSHA, CreatedAt: x.CreatedAt}
}

func (s *Service) apiReviews(c *httpapi.Call, r Repo) error {
	pr, err := s.pullOf(c, r)
	if err != nil {
		return err
	}
	rvs, err := s.Reviews(c.R.Context(), pr)
	if err != nil {
		return err
	}
	out := []ReviewJSON{}
	for _, rv := range rvs {
		out = append(out, reviewJSON(rv))
	}
	return c.JSON(out)
}

func (s *Service) apiReview(c *httpapi.Call, r Repo) error {
	var req ReviewRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	pr, err := s.pullOf(c, r)
	if err != nil {
		return err
	}
	rv, err := s.AddReview(c.R.Context(), r, pr, req.State, req.Body)
	if err != nil {
		return err
	}
	return c.JSON(reviewJSON(rv))
}

func (s *Service) apiComments(c *httpapi.Call, r Repo) error {
	pr, err := s.pullOf(c, r)
	if err != nil {
		return err
	}
	cs, err := s.Comments(c.R.Context(), pr)
	if err != nil {
		return err
	}
	out := []CommentJSON{}
	for _, x := range cs {
		out = append(out, commentJSON(x))
	}
	return c.JSON(out)
}

func (s *Service) apiComment(c *httpapi.Call, r Repo) error {
	var req CommentRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	pr, err := s.pullOf(c, r)
	if err != nil {
		return err
	}
	x, err := s.AddComment(c.R.Context(), r, pr, Comment{Body: req.Body, Path: req.Path, Line: req.Line, Side: req.Side})
	if err != nil {
		return err
	}
	return c.JSON(commentJSON(x))
}

func (s *Service) apiMerge(c *httpapi.Call, r Repo) error {
	var req MergeRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	pr, err := s.pullOf(c, r)
	if err != nil {
		return err
	}
	pr, err = s.Merge(c.R.Context(), r, pr, c.P.User, MergeOptions(req))
	if err != nil {
		return err
	}
	return c.JSON(s.pullJSON(r, pr))
}

func (s *Service) hookJSON(ctx *httpapi.Call, h Webhook, r *Repo) WebhookJSON {
	j := WebhookJSON{ID: h.ID, URL: h.URL, Events: h.Events, Active: h.Active, HasSecret: h.HasSecret, CreatedBy: h.CreatedBy, CreatedAt: h.CreatedAt}
	if r != nil {
		j.Repo = r.FullName()
	}
	return j
}

func (s *Service) listHooks(c *httpapi.Call, o identity.Org, r *Repo) error {
	hs, err := s.Webhooks(c.R.Context(), o, r)
	if err != nil {
		return err
	}
	out := []WebhookJSON{}
	for _, h := range hs {
		out = append(out, s.hookJSON(c, h, r))
	}
	return c.JSON(out)
}

func (s *Service) createHook(c *httpapi.Call, o identity.Org, r *Repo) error {
	var req WebhookRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	h, err := s.CreateWebhook(c.R.Context(), o, r, NewWebhook(req))
	if err != nil {
		return err
	}
	return c.JSON(s.hookJSON(c, h, r))
}

func (s *Service) hookOf(c *httpapi.Call, o identity.Org, r *Repo) (Webhook, error) {
	id, err := strconv.ParseInt(c.R.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return Webhook{}, apperr.InvalidField("id", "webhook id must be a positive number")
	}
	return s.Webhook(c.R.Context(), o, r, id)
}

func (s *Service) deleteHook(c *httpapi.Call, o identity.Org, r *Repo) error {
	h, err := s.hookOf(c, o, r)
	if err != nil {
		return err
	}
	if err := s.DeleteWebhook(c.R.Context(), h); err != nil {
		return err
	}
	return c.NoContent()
}

func (s *Service) listDeliveries(c *httpapi.Call, o identity.Org, r *Repo) error {
	h, err := s.hookOf(c, o, r)
	if err != nil {
		return err
	}
	limit, _ := strconv.Atoi(c.R.URL.Query().Get("limit"))
	ds, err := s.Deliveries(c.R.Context(), h, limit)
	if err != nil {
		return err
	}
	out := []DeliveryJSON{}
	for _, d := range ds {
		out = append(out, deliveryJSON(d, c.R.URL.Query().Get("payload") == "true"))
	}
	return c.JSON(out)
}

func (s *Service) redeliver(c *httpapi.Call, o identity.Org, r *Repo) error {
	h, err := s.hookOf(c, o, r)
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(c.R.PathValue("delivery"), 10, 64)
	if err != nil || id <= 0 {
		return apperr.InvalidField("delivery", "delivery id must be a positive number")
	}
	d, err := s.Delivery(c.R.Context(), h, id)
	if err != nil {
		return err
	}
	nd, err := s.Redeliver(c.R.Context(), h, d)
	if err != nil {
		return err
	}
	return c.JSON(deliveryJSON(nd, false))
}

func (s *Service) repoOrg(c *httpapi.Call, r Repo) (identity.Org, error) {
	return c.IDs().OrgByID(c.R.Context(), r.OrgID)
}

func (s *Service) apiRepoHooks(c *httpapi.Call, r Repo) error {
	o, err := s.repoOrg(c, r)
	if err != nil {
		return err
	}
	return s.listHooks(c, o, &r)
}

func (s *Service) apiCreateRepoHook(c *httpapi.Call, r Repo) error {
	o, err := s.repoOrg(c, r)
	if err != nil {
		return err
	}
	return s.createHook(c, o, &r)
}

func (s *Service) apiDeleteRepoHook(c *httpapi.Call, r Repo) error {
	o, err := s.repoOrg(c, r)
	if err != nil {
		return err
	}
	return s.deleteHook(c, o, &r)
}

func (s *Service) apiRepoDeliveries(c *httpapi.Call, r Repo) error {
	o, err := s.repoOrg(c, r)
	if err != nil {
		return err
	}
	return s.listDeliveries(c, o, &r)
}

func (s *Service) apiRepoRedeliver(c *httpapi.Call, r Repo) error {
	o, err := s.repoOrg(c, r)
	if err != nil {
		return err
	}
	return s.redeliver(c, o, &r)
}

func (s *Service) apiOrgHooks(c *httpapi.Call) error      { return s.listHooks(c, c.Org, nil) }
func (s *Service) apiCreateOrgHook(c *httpapi.Call) error { return s.createHook(c, c.Org, nil) }
func (s *Service) apiDeleteOrgHook(c *httpapi.Call) error { return s.deleteHook(c, c.Org, nil) }
func (s *Service) apiOrgDeliveries(c *httpapi.Call) error { return s.listDeliveries(c, c.Org, nil) }
func (s *Service) apiOrgRedeliver(c *httpapi.Call) error  { return s.redeliver(c, c.Org, nil) }

func (s *Service) apiSSHKeys(c *httpapi.Call) error {
	ks, err := s.SSHKeys(c.R.Context(), c.P.User.ID)
	if err != nil {
		return err
	}
	out := []SSHKeyJSON{}
	for _, k := range ks {
		out = append(out, keyJSON(k))
	}
	return c.JSON(out)
}

func (s *Service) apiAddSSHKey(c *httpapi.Call) error {
	var req SSHKeyRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	k, err := s.AddSSHKey(c.R.Context(), c.P.User, req.Name, req.Key)
	if err != nil {
		return err
	}
	return c.JSON(keyJSON(k))
}

func (s *Service) apiRemoveSSHKey(c *httpapi.Call) error {
	id, err := strconv.ParseInt(c.R.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return apperr.InvalidField("id", "key id must be a positive number")
	}
	if err := s.RemoveSSHKey(c.R.Context(), c.P.User, id); err != nil {
		return err
	}
	return c.NoContent()
}
