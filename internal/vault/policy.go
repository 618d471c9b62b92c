package vault

import (
	"context"
	"encoding/json"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/store"
)

// A policy grants reading secret values. Nobody reads a value without
// one (default deny); roles decide who may manage secrets and policies,
// policies decide who may read what. A policy names the secrets it covers
// with patterns relative to its org (NAME, PROJECT/NAME,
// PROJECT/ENV/NAME; '*' matches within one part, as in path.Match) and
// the subjects it grants them to:
//
//	user:NAME                      a user or service account
//	team:NAME                      every member of a team of the org
//	pipeline:PROJECT:BRANCH:ENV    jobs of PROJECT's pipelines on BRANCH deploying to ENV (patterns; '*' in BRANCH spans '/')
//	deployment:PROJECT:ENV         workloads of PROJECT's releases in ENV (ENV may be a pattern)
type Policy struct {
	ID          int64
	Org         string
	Name        string
	Description string
	Secrets     []string
	Subjects    []Subject
	CreatedAt   time.Time
	CreatedBy   string
}

// Subject kinds.
const (
	SubjectUser       = "user"
	SubjectTeam       = "team"
	SubjectPipeline   = "pipeline"
	SubjectDeployment = "deployment"
)

// Subject is who a policy grants to.
type Subject struct {
	Kind    string
	Name    string // user or team name
	Project string // pipeline and deployment
	Branch  string // pipeline
	Env     string // pipeline and deployment

	id int64 // user or team id
}

func (s Subject) String() string {
	switch s.Kind {
	case SubjectPipeline:
		return s.Kind + ":" + s.Project + ":" + s.Branch + ":" + s.Env
	case SubjectDeployment:
		return s.Kind + ":" + s.Project + ":" + s.Env
	}
	return s.Kind + ":" + s.Name
}

// Policy limits.
const (
	maxPolicySecrets  = 50
	maxPolicySubjects = 100
	maxPolicies       = 500
	maxPattern        = 300
)

var (
	policyNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	patternRE    = regexp.MustCompile(`^[A-Za-z0-9_.*?\-]+(/[A-Za-z0-9_.*?\-]+){0,2}$`)
	branchRE     = regexp.MustCompile(`^[A-Za-z0-9_./*?\-]{1,200}$`)
)

// ParseSubject parses a subject's text form (see Policy).
func ParseSubject(text string) (Subject, error) {
	bad := func(format string, args ...any) (Subject, error) {
		return Subject{}, apperr.InvalidField("subjects", format, args...)
	}
	if len(text) > 300 {
		return bad("a subject is at most 300 characters")
	}
	kind, rest, _ := strings.Cut(text, ":")
	switch kind {
	case SubjectUser, SubjectTeam:
		if rest == "" || len(rest) > 100 || strings.Contains(rest, ":") {
			return bad("%s subject %q needs a name", kind, clip(text))
		}
		return Subject{Kind: kind, Name: rest}, nil
	case SubjectPipeline:
		parts := strings.Split(rest, ":")
		if len(parts) != 3 {
			return bad("a pipeline subject is pipeline:PROJECT:BRANCH:ENV (got %q)", clip(text))
		}
		s := Subject{Kind: kind, Project: parts[0], Branch: parts[1], Env: parts[2]}
		if !projectRE.MatchString(s.Project) || !branchRE.MatchString(s.Branch) || !validPattern(s.Branch) || !envPattern(s.Env) {
			return bad("pipeline subject %q: bad project, branch or environment", clip(text))
		}
		return s, nil
	case SubjectDeployment:
		parts := strings.Split(rest, ":")
		if len(parts) != 2 {
			return bad("a deployment subject is deployment:PROJECT:ENV (got %q)", clip(text))
		}
		s := Subject{Kind: kind, Project: parts[0], Env: parts[1]}
		if !projectRE.MatchString(s.Project) || !envPattern(s.Env) {
			return bad("deployment subject %q: bad project or environment", clip(text))
		}
		return s, nil
	}
	return bad("subject %q must start with user:, team:, pipeline: or deployment:", clip(text))
}

func validPattern(p string) bool {
	_, err := path.Match(p, "")
	return err == nil
}

func envPattern(p string) bool {
	return len(p) > 0 && len(p) <= 40 && validPattern(p) && strings.Trim(p, "abcdefghijklmnopqrstuvwxyz0123456789-_*?") == ""
}

// NewPolicy describes a policy to create or replace.
type NewPolicy struct {
	Name        string
	Description string
	Secrets     []string
	Subjects    []string
}

// PutPolicy creates or replaces a policy of an org.
func (s *Service) PutPolicy(ctx context.Context, org string, np NewPolicy) (Policy, error) {
	if !policyNameRE.MatchString(np.Name) {
		return Policy{}, apperr.InvalidField("name", "a policy name is lower-case letters, digits, '-' and '_', at most 63")
	}
	if len(np.Description) > maxDescLen {
		return Policy{}, apperr.InvalidField("description", "a description may have at most %d characters", maxDescLen)
	}
	if len(np.Secrets) == 0 || len(np.Secrets) > maxPolicySecrets {
		return Policy{}, apperr.InvalidField("secrets", "a policy names 1 to %d secret patterns", maxPolicySecrets)
	}
	if len(np.Subjects) == 0 || len(np.Subjects) > maxPolicySubjects {
		return Policy{}, apperr.InvalidField("subjects", "a policy names 1 to %d subjects", maxPolicySubjects)
	}
	for _, p := range np.Secrets {
		if len(p) > maxPattern || !patternRE.MatchString(p) || !validPattern(p) {
			return Policy{}, apperr.InvalidField("secrets", "%q is not a secret pattern (NAME, PROJECT/NAME or PROJECT/ENV/NAME, with * and ?)", clip(p))
		}
	}
	o, err := s.ids.Org(ctx, org)
	if err != nil {
		return Policy{}, err
	}
	pol := Policy{Org: o.Name, Name: np.Name, Description: np.Description, Secrets: slices.Clone(np.Secrets),
		CreatedAt: s.now().UTC().Truncate(time.Microsecond), CreatedBy: actor(ctx)}
	for _, text := range np.Subjects {
		sub, err := ParseSubject(text)
		if err != nil {
			return Policy{}, err
		}
		if sub, err = s.resolveSubject(ctx, o, sub); err != nil {
			return Policy{}, err
		}
		pol.Subjects = append(pol.Subjects, sub)
	}
	secrets, _ := json.Marshal(pol.Secrets)
	subjects, _ := json.Marshal(storedSubjects(pol.Subjects))
	err = s.commit.do(ctx, func(ctx context.Context, tx *store.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, "SELECT COUNT(*) FROM vault_policies WHERE org_id = ?", o.ID).Scan(&n); err != nil {
			return err
		}
		if n >= maxPolicies {
			return apperr.E(apperr.Invalid, "%s has %d policies, the most an org may have", o.Name, n)
		}
		err := tx.QueryRow(ctx, `INSERT INTO vault_policies (org_id, name, description, secrets, subjects, created_at, created_by)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (org_id, name) DO UPDATE SET description = excluded.description,
			secrets = excluded.secrets, subjects = excluded.subjects RETURNING id`,
			o.ID, pol.Name, pol.Description, string(secrets), string(subjects), store.Time(pol.CreatedAt), pol.CreatedBy).Scan(&pol.ID)
		if err != nil {
			return err
		}
		if err := bumpPolicies(ctx, tx, o.ID); err != nil {
			return err
		}
		names := make([]string, len(pol.Subjects))
		for i, sub := range pol.Subjects {
			names[i] = sub.String()
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "vault.policy.put", OrgID: o.ID,
			Target:  audit.Target{Type: "vault_policy", ID: strconv.FormatInt(pol.ID, 10), Name: pol.Name},
			Details: map[string]any{"secrets": pol.Secrets, "subjects": names}})
	})
	return pol, err
}

func bumpPolicies(ctx context.Context, tx *store.Tx, orgID int64) error {
	_, err := tx.Exec(ctx, `INSERT INTO vault_policy_generation (org_id, generation) VALUES (?, 1)
		ON CONFLICT (org_id) DO UPDATE SET generation = vault_policy_generation.generation + 1`, orgID)
	return err
}

// resolveSubject checks that a user or team exists in the org and records
// its id (a renamed or recreated name must not inherit grants).
func (s *Service) resolveSubject(ctx context.Context, o identity.Org, sub Subject) (Subject, error) {
	switch sub.Kind {
	case SubjectUser:
		u, err := s.ids.UserByName(ctx, sub.Name)
		if apperr.Is(err, apperr.NotFound) {
			return sub, apperr.InvalidField("subjects", "no user %q", clip(sub.Name))
		}
		if err != nil {
			return sub, err
		}
		sub.id = u.ID
	case SubjectTeam:
		t, err := s.ids.Team(ctx, o.ID, sub.Name)
		if apperr.Is(err, apperr.NotFound) {
			return sub, apperr.InvalidField("subjects", "%s has no team %q", o.Name, clip(sub.Name))
		}
		if err != nil {
			return sub, err
		}
		sub.id = t.ID
	case SubjectPipeline, SubjectDeployment:
		if _, err := s.ids.Project(ctx, o.ID, sub.Project); apperr.Is(err, apperr.NotFound) {
			return sub, apperr.InvalidField("subjects", "%s has no project %q", o.Name, sub.Project)
		} else if err != nil {
			return sub, err
		}
	}
	return sub, nil
}

type storedSubject struct {
	Kind    string `json:"kind"`
	ID      int64  `json:"id,omitempty"`
	Name    string `json:"name,omitempty"`
	Project string `json:"project,omitempty"`
	Branch  string `json:"branch,omitempty"`
	Env     string `json:"env,omitempty"`
}

func storedSubjects(subs []Subject) []storedSubject {
	out := make([]storedSubject, len(subs))
	for i, s := range subs {
		out[i] = storedSubject{Kind: s.Kind, ID: s.id, Name: s.Name, Project: s.Project, Branch: s.Branch, Env: s.Env}
	}
	return out
}

// DeletePolicy removes a policy of an org.
func (s *Service) DeletePolicy(ctx context.Context, org, name string) error {
	o, err := s.ids.Org(ctx, org)
	if err != nil {
		return err
	}
	return s.commit.do(ctx, func(ctx context.Context, tx *store.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, "SELECT id FROM vault_policies WHERE org_id = ? AND name = ?", o.ID, name).Scan(&id)
		if apperr.Is(err, apperr.NotFound) {
			return apperr.E(apperr.NotFound, "%s has no policy %q", o.Name, clip(name))
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM vault_policies WHERE id = ?", id); err != nil {
			return err
		}
		if err := bumpPolicies(ctx, tx, o.ID); err != nil {
			return err
		}
		return s.audit.AppendTx(ctx, tx, audit.Record{Action: "vault.policy.delete", OrgID: o.ID,
			Target: audit.Target{Type: "vault_policy", ID: strconv.FormatInt(id, 10), Name: name}})
	})
}

// Policies lists an org's policies by name.
func (s *Service) Policies(ctx context.Context, org string) ([]Policy, error) {
	o, err := s.ids.Org(ctx, org)
	if err != nil {
		return nil, err
	}
	set, err := s.policies(ctx, o.ID)
	if err != nil {
		return nil, err
	}
	out := slices.Clone(set.list)
	for i := range out {
		out[i].Org = o.Name
	}
	return out, nil
}

// policySet is an org's policies at one generation.
type policySet struct {
	generation int64
	list       []Policy
}

// policies returns an org's policies, cached until they change (checked
// with one small read per call, so every replica sees a change at once).
func (s *Service) policies(ctx context.Context, orgID int64) (policySet, error) {
	var gen int64
	err := s.db.QueryRow(ctx, "SELECT generation FROM vault_policy_generation WHERE org_id = ?", orgID).Scan(&gen)
	if err != nil && !apperr.Is(err, apperr.NotFound) {
		return policySet{}, err
	}
	return s.policiesAt(ctx, orgID, gen)
}

// policiesAt is policies when the caller read the org's policy generation
// (0 when the org has none) in its own query.
func (s *Service) policiesAt(ctx context.Context, orgID, gen int64) (policySet, error) {
	s.policyMu.Lock()
	cached, ok := s.policyCache[orgID]
	s.policyMu.Unlock()
	if ok && cached.generation == gen {
		return cached, nil
	}
	set := policySet{generation: gen}
	if gen > 0 {
		rows, err := s.db.Query(ctx, "SELECT id, name, description, secrets, subjects, created_at, created_by FROM vault_policies WHERE org_id = ? ORDER BY name", orgID)
		if err != nil {
			return policySet{}, err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				p                 Policy
				secrets, subjects string
				stored            []storedSubject
			)
			if err := rows.Scan(&p.ID, &p.Name, &p.Description, &secrets, &subjects, store.TimeDest(&p.CreatedAt), &p.CreatedBy); err != nil {
				return policySet{}, err
			}
			if err := json.Unmarshal([]byte(secrets), &p.Secrets); err != nil {
				return policySet{}, apperr.Wrap(err, apperr.Internal, "stored policy is malformed")
			}
			if err := json.Unmarshal([]byte(subjects), &stored); err != nil {
				return policySet{}, apperr.Wrap(err, apperr.Internal, "stored policy is malformed")
			}
			for _, st := range stored {
				p.Subjects = append(p.Subjects, Subject{Kind: st.Kind, id: st.ID, Name: st.Name, Project: st.Project, Branch: st.Branch, Env: st.Env})
			}
			set.list = append(set.list, p)
		}
		if err := rows.Err(); err != nil {
			return policySet{}, err
		}
	}
	s.policyMu.Lock()
	s.policyCache[orgID] = set
	s.policyMu.Unlock()
	return set, nil
}

// covers reports whether one of the policy's patterns matches ref.
func (p Policy) covers(ref Ref) bool {
	rel := ref.Relative()
	for _, pat := range p.Secrets {
		if ok, _ := path.Match(pat, rel); ok {
			return true
		}
	}
	return false
}

func match(pattern, s string) bool {
	ok, _ := path.Match(pattern, s)
	return ok
}

// globAny matches s against pattern where '*' matches any run of
// characters, '/' included (branch names have slashes), and '?' one.
func globAny(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// grant finds the policy that lets rd read ref, or "" when none does.
func (s *Service) grant(ctx context.Context, org identity.Org, ref Ref, rd Reader) (string, error) {
	set, err := s.policies(ctx, org.ID)
	if err != nil {
		return "", err
	}
	return s.grantIn(ctx, set, org, ref, rd)
}

// grantIn is grant with the org's policies already loaded.
func (s *Service) grantIn(ctx context.Context, set policySet, org identity.Org, ref Ref, rd Reader) (string, error) {
	for _, p := range set.list {
		if !p.covers(ref) {
			continue
		}
		for _, sub := range p.Subjects {
			ok, err := s.subjectMatches(ctx, org, sub, rd)
			if err != nil {
				return "", err
			}
			if ok {
				return p.Name, nil
			}
		}
	}
	return "", nil
}

func (s *Service) subjectMatches(ctx context.Context, org identity.Org, sub Subject, rd Reader) (bool, error) {
	switch {
	case rd.Pipeline != nil:
		pr := rd.Pipeline
		return sub.Kind == SubjectPipeline && pr.Org == org.Name && sub.Project == pr.Project && globAny(sub.Branch, pr.Branch) &&
			match(sub.Env, pr.Env), nil
	case rd.Deployment != nil:
		d := rd.Deployment
		return sub.Kind == SubjectDeployment && d.Org == org.Name && sub.Project == d.Project && match(sub.Env, d.Env), nil
	case rd.UserID != 0:
		switch sub.Kind {
		case SubjectUser:
			return sub.id == rd.UserID, nil
		case SubjectTeam:
			members, err := s.ids.TeamMembers(ctx, sub.id)
			if err != nil {
				return false, err
			}
			return slices.ContainsFunc(members, func(u identity.User) bool { return u.ID == rd.UserID }), nil
		}
	}
	return false, nil
}
