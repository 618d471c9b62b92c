// Package authz decides every permission in Rampart, in one function:
// Decide(subject, action, resource).
//
// Roles are owner, maintainer, developer and reader, granted at org level
// (org membership) and at project level (a grant to a user or to a team). A
// role at org level applies to every project of the org; a project grant can
// only raise it. Site administrators may do everything.
//
// Credentials narrow what a subject may do: a browser session carries all of
// its user's roles, while a personal access token, service-account token or
// OAuth access token carries scopes, and an action needs the scope listed for
// it. The scope "admin" stands for every scope.
//
// An org may require two-factor authentication: its resources are then
// closed to members who have not enrolled a second factor.
package authz

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/rampartsec/rampart/internal/apperr"
)

// Role is a level of access; a higher role includes every lower one.
type Role uint8

// Roles, lowest first.
const (
	NoRole Role = iota
	Reader
	Developer
	Maintainer
	Owner
)

var roleNames = [...]string{"none", "reader", "developer", "maintainer", "owner"}

func (r Role) String() string {
	if int(r) < len(roleNames) {
		return roleNames[r]
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// ParseRole parses a role name.
func ParseRole(s string) (Role, error) {
	for i, n := range roleNames {
		if i > 0 && n == s {
			return Role(i), nil
		}
	}
	return NoRole, apperr.InvalidField("role", "unknown role %q (want owner, maintainer, developer or reader)", s)
}

// RoleNames lists the grantable roles, highest first.
func RoleNames() []string { return []string{"owner", "maintainer", "developer", "reader"} }

// Scope limits what a token may do.
type Scope string

// Scopes. Keep docs/scopes.md in step (a test checks it).
const (
	ScopeAdmin         Scope = "admin"
	ScopeUserRead      Scope = "user:read"
	ScopeUserWrite     Scope = "user:write"
	ScopeOrgRead       Scope = "org:read"
	ScopeOrgWrite      Scope = "org:write"
	ScopeRepoRead      Scope = "repo:read"
	ScopeRepoWrite     Scope = "repo:write"
	ScopeRegistryPull  Scope = "registry:pull"
	ScopeRegistryPush  Scope = "registry:push"
	ScopePipelineRead  Scope = "pipeline:read"
	ScopePipelineWrite Scope = "pipeline:write"
	ScopeVaultRead     Scope = "vault:read"
	ScopeVaultWrite    Scope = "vault:write"
	ScopeAuditRead     Scope = "audit:read"
	ScopeMetricsRead   Scope = "metrics:read"
)

// Scopes of policy gates (package policy).
const (
	ScopePolicyDecide Scope = "policy:decide"
)

// ScopeInfo documents a scope.
type ScopeInfo struct {
	Name        Scope
	Description string
}

// Scopes lists every scope with what it allows.
func Scopes() []ScopeInfo {
	return []ScopeInfo{
		{ScopeAdmin, "everything the token's owner may do, including administration; implies every other scope"},
		{ScopeUserRead, "read your profile, org memberships and tokens"},
		{ScopeUserWrite, "manage your own account: profile and tokens"},
		{ScopeOrgRead, "read orgs, teams, projects and their members"},
		{ScopeOrgWrite, "create and administer orgs, teams, projects, members, service accounts and sign-in sources"},
		{ScopeRepoRead, "clone and fetch repositories, read pull requests"},
		{ScopeRepoWrite, "push to repositories, open and merge pull requests"},
		{ScopeRegistryPull, "pull images from the registry"},
		{ScopeRegistryPush, "push images to the registry"},
		{ScopePipelineRead, "read pipeline runs and logs"},
		{ScopePipelineWrite, "start, cancel and re-run pipelines"},
		{ScopeRunner, "act as a remote pipeline runner: take queued jobs with their secrets and report their logs (site administrators' tokens only)"},
		{ScopeVaultRead, "read secrets the owner may read"},
		{ScopeVaultWrite, "create, rotate and delete secrets"},
		{ScopeAuditRead, "read and export the audit log the owner may see"},
		{ScopeMetricsRead, "scrape /metrics (Prometheus)"},
		{ScopePolicyDecide, "ask policy gates for recorded decisions and send Kubernetes admission reviews"},
	}
}

// ParseScopes validates scope names, removing duplicates; at least one is
// required.
func ParseScopes(names []string) ([]Scope, error) {
	known := map[Scope]bool{}
	for _, s := range Scopes() {
		known[s.Name] = true
	}
	var out []Scope
	for _, n := range names {
		for part := range strings.SplitSeq(n, ",") {
			s := Scope(strings.TrimSpace(part))
			if s == "" {
				continue
			}
			if !known[s] {
				return nil, apperr.InvalidField("scopes", "unknown scope %q; see `rampart token scopes`", s)
			}
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	if len(out) == 0 {
		return nil, apperr.InvalidField("scopes", "at least one scope is required")
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// Subject is who is asking, with every role they hold.
type Subject struct {
	UserID    int64
	Name      string
	SiteAdmin bool
	// Service marks a service account (a non-human user owned by an org).
	Service bool
	// MFA reports whether the user has a second factor enrolled.
	MFA bool
	// OrgRoles maps org id to the subject's role in that org.
	OrgRoles map[int64]Role
	// ProjectRoles maps project id to the subject's direct or team grant.
	ProjectRoles map[int64]Role
	// Scopes restricts a token; nil means unrestricted (a browser session).
	Scopes []Scope
	// Via names the credential: "session", "token", "oauth".
	Via string
}

// Anonymous is the subject of an unauthenticated request.
var Anonymous = Subject{}

// Authenticated reports whether the subject is a signed-in user.
func (s Subject) Authenticated() bool { return s.UserID != 0 }

// HasScope reports whether the subject's credential carries scope sc.
func (s Subject) HasScope(sc Scope) bool {
	if s.Scopes == nil {
		return true
	}
	return slices.Contains(s.Scopes, ScopeAdmin) || slices.Contains(s.Scopes, sc)
}

// OrgRole returns the subject's role in an org.
func (s Subject) OrgRole(orgID int64) Role { return s.OrgRoles[orgID] }

// ProjectRole returns the subject's effective role in a project of an org:
// the higher of the org role and the project grant.
func (s Subject) ProjectRole(orgID, projectID int64) Role {
	return max(s.OrgRoles[orgID], s.ProjectRoles[projectID])
}

// Resource is what an action is done to.
type Resource struct {
	// OrgID is the org owning the resource (0 for site-level resources).
	OrgID int64
	// ProjectID is the project owning the resource, if any.
	ProjectID int64
	// OwnerID is the user owning the resource (own account, own tokens).
	OwnerID int64
	// RequireMFA is set when the owning org requires two-factor
	// authentication of its members.
	RequireMFA bool
	// Grant is the role the action hands out (a project grant), if any:
	// nobody but a site administrator may hand out a role above their own.
	Grant Role
}

// Site is the resource of site-wide actions.
var Site = Resource{}

// Level says at which level an action's role is checked.
type Level uint8

// Levels.
const (
	LevelPublic    Level = iota + 1 // anyone, even anonymous
	LevelAuthed                     // any signed-in user
	LevelHuman                      // any signed-in human (not a service account)
	LevelSelf                       // the owner of the resource (or a site admin)
	LevelOrg                        // a role in Resource.OrgID
	LevelProject                    // a role in Resource.ProjectID (org role included)
	LevelSiteAdmin                  // site administrators only
)

// Action is something a subject may be allowed to do.
type Action struct {
	Name  string
	Level Level
	Role  Role  // minimum role at LevelOrg / LevelProject
	Scope Scope // scope a token needs ("" for none)
}

// Actions of the foundation. Components add theirs next to these.
var (
	Public = Action{Name: "public", Level: LevelPublic}

	SelfRead  = Action{Name: "self.read", Level: LevelSelf, Scope: ScopeUserRead}
	SelfWrite = Action{Name: "self.write", Level: LevelSelf, Scope: ScopeUserWrite}
	// SelfSecurity covers second factors and passwords: tokens may never
	// change them, only a browser session (or an admin-scoped CLI login).
	SelfSecurity = Action{Name: "self.security", Level: LevelSelf, Scope: ScopeAdmin}

	OrgCreate       = Action{Name: "org.create", Level: LevelHuman, Scope: ScopeOrgWrite}
	OrgList         = Action{Name: "org.list", Level: LevelAuthed, Scope: ScopeOrgRead}
	OrgRead         = Action{Name: "org.read", Level: LevelOrg, Role: Reader, Scope: ScopeOrgRead}
	OrgUpdate       = Action{Name: "org.update", Level: LevelOrg, Role: Owner, Scope: ScopeOrgWrite}
	OrgDelete       = Action{Name: "org.delete", Level: LevelOrg, Role: Owner, Scope: ScopeOrgWrite}
	OrgMembersWrite = Action{Name: "org.members.write", Level: LevelOrg, Role: Owner, Scope: ScopeOrgWrite}
	// Teams carry project grants, so only owners change them: a maintainer
	// adding themselves to a team could otherwise gain its roles.
	OrgTeamsWrite   = Action{Name: "org.teams.write", Level: LevelOrg, Role: Owner, Scope: ScopeOrgWrite}
	OrgServiceWrite = Action{Name: "org.serviceaccounts.write", Level: LevelOrg, Role: Owner, Scope: ScopeOrgWrite}
	OrgIdPWrite     = Action{Name: "org.idp.write", Level: LevelOrg, Role: Owner, Scope: ScopeOrgWrite}
	OrgAuditRead    = Action{Name: "org.audit.read", Level: LevelOrg, Role: Owner, Scope: ScopeAuditRead}

	ProjectCreate       = Action{Name: "project.create", Level: LevelOrg, Role: Maintainer, Scope: ScopeOrgWrite}
	ProjectRead         = Action{Name: "project.read", Level: LevelProject, Role: Reader, Scope: ScopeOrgRead}
	ProjectUpdate       = Action{Name: "project.update", Level: LevelProject, Role: Maintainer, Scope: ScopeOrgWrite}
	ProjectMembersWrite = Action{Name: "project.members.write", Level: LevelProject, Role: Maintainer, Scope: ScopeOrgWrite}
	ProjectDelete       = Action{Name: "project.delete", Level: LevelProject, Role: Owner, Scope: ScopeOrgWrite}

	UsersRead    = Action{Name: "users.read", Level: LevelAuthed, Scope: ScopeUserRead}
	UsersAdmin   = Action{Name: "users.admin", Level: LevelSiteAdmin, Scope: ScopeAdmin}
	ClientsAdmin = Action{Name: "clients.admin", Level: LevelSiteAdmin, Scope: ScopeAdmin}
	AuditRead    = Action{Name: "audit.read", Level: LevelSiteAdmin, Scope: ScopeAuditRead}
	MetricsRead  = Action{Name: "metrics.read", Level: LevelAuthed, Scope: ScopeMetricsRead}
)

// Actions of policy gates, the decision log and exceptions (package
// policy).
var (
	// PolicyRead shows the loaded policies, their modes and the bundle
	// revision.
	PolicyRead   = Action{Name: "policy.read", Level: LevelAuthed, Scope: ScopeOrgRead}
	PolicyReload = Action{Name: "policy.reload", Level: LevelSiteAdmin, Scope: ScopeAdmin}
	// PolicyEvaluate dry-runs a gate: nothing is recorded.
	PolicyEvaluate = Action{Name: "policy.evaluate", Level: LevelOrg, Role: Reader, Scope: ScopeOrgRead}
	// PolicyDecide asks a gate for a decision recorded in the org's
	// decision log (pipelines, other tools, admission webhooks).
	PolicyDecide        = Action{Name: "policy.decide", Level: LevelOrg, Role: Developer, Scope: ScopePolicyDecide}
	PolicyDecisionsRead = Action{Name: "policy.decisions.read", Level: LevelOrg, Role: Reader, Scope: ScopeOrgRead}
	PolicyExceptionRead = Action{Name: "policy.exceptions.read", Level: LevelOrg, Role: Reader, Scope: ScopeOrgRead}
	// PolicyExceptionWrite sets rules aside for the whole org: owners
	// only, like the org's other security settings.
	PolicyExceptionWrite = Action{Name: "policy.exceptions.write", Level: LevelOrg, Role: Owner, Scope: ScopeOrgWrite}
)

// OIDCKeysAdmin rotates the OpenID provider's signing keys (site
// administrators).
var OIDCKeysAdmin = Action{Name: "oidc.keys.admin", Level: LevelSiteAdmin, Scope: ScopeAdmin}

// Actions of boards (work items) and security alerts. Both belong to an
// org; tokens use the repo scopes, as issues do on other forges. Alerts
// can point at secrets and weaknesses, so reading them takes a developer,
// and dismissing one — a security decision — a maintainer.
var (
	WorkItemRead   = Action{Name: "workitem.read", Level: LevelOrg, Role: Reader, Scope: ScopeRepoRead}
	WorkItemWrite  = Action{Name: "workitem.write", Level: LevelOrg, Role: Developer, Scope: ScopeRepoWrite}
	WorkItemDelete = Action{Name: "workitem.delete", Level: LevelOrg, Role: Maintainer, Scope: ScopeRepoWrite}

	AlertRead     = Action{Name: "alert.read", Level: LevelOrg, Role: Developer, Scope: ScopeRepoRead}
	AlertDismiss  = Action{Name: "alert.dismiss", Level: LevelOrg, Role: Maintainer, Scope: ScopeRepoWrite}
	AlertWorkItem = Action{Name: "alert.workitem", Level: LevelOrg, Role: Developer, Scope: ScopeRepoWrite}
	AlertScan     = Action{Name: "alert.scan", Level: LevelOrg, Role: Maintainer, Scope: ScopeRepoWrite}
)

// Registry actions. Pull, push and delete are checked on a repository's
// project (or org, for ORG/NAME repositories); the others are the
// registry's API at org level.
var (
	RegistryPull   = Action{Name: "registry.pull", Level: LevelProject, Role: Reader, Scope: ScopeRegistryPull}
	RegistryPush   = Action{Name: "registry.push", Level: LevelProject, Role: Developer, Scope: ScopeRegistryPush}
	RegistryDelete = Action{Name: "registry.delete", Level: LevelProject, Role: Maintainer, Scope: ScopeRegistryPush}
	RegistryRead   = Action{Name: "registry.read", Level: LevelOrg, Role: Reader, Scope: ScopeRegistryPull}
	RegistrySign   = Action{Name: "registry.sign", Level: LevelOrg, Role: Developer, Scope: ScopeRegistryPush}
	RegistryAdmin  = Action{Name: "registry.admin", Level: LevelOrg, Role: Maintainer, Scope: ScopeRegistryPush}
	RegistryQuota  = Action{Name: "registry.quota", Level: LevelOrg, Role: Owner, Scope: ScopeOrgWrite}
	RegistryGC     = Action{Name: "registry.gc", Level: LevelSiteAdmin, Scope: ScopeAdmin}
)

// Vault actions. Roles decide who manages secrets; reading a value also
// needs a vault policy granting it (checked by the vault itself).
var (
	// VaultSecretList shows secrets' metadata (names, versions, owners,
	// dates), never values.
	VaultSecretList = Action{Name: "vault.secret.list", Level: LevelProject, Role: Reader, Scope: ScopeVaultRead}
	// VaultSecretRead reads a value, when a vault policy grants it too.
	VaultSecretRead = Action{Name: "vault.secret.read", Level: LevelProject, Role: Reader, Scope: ScopeVaultRead}
	// VaultSecretWrite sets, rotates, rolls back and deletes secrets.
	VaultSecretWrite = Action{Name: "vault.secret.write", Level: LevelProject, Role: Maintainer, Scope: ScopeVaultWrite}
	// VaultSettingsWrite changes a project's vault settings (rotation on
	// leak, rolling restarts on rotation).
	VaultSettingsWrite = Action{Name: "vault.settings.write", Level: LevelProject, Role: Maintainer, Scope: ScopeVaultWrite}
	// VaultPolicyRead lists who may read which secrets.
	VaultPolicyRead = Action{Name: "vault.policy.read", Level: LevelOrg, Role: Reader, Scope: ScopeVaultRead}
	// VaultPolicyWrite grants and revokes reading secrets: owners only,
	// like teams, since it hands out access.
	VaultPolicyWrite = Action{Name: "vault.policy.write", Level: LevelOrg, Role: Owner, Scope: ScopeVaultWrite}
	// VaultKeyRead lists signing keys and exports their public keys.
	VaultKeyRead = Action{Name: "vault.key.read", Level: LevelProject, Role: Reader, Scope: ScopeVaultRead}
	// VaultKeyWrite creates, deletes and signs with signing keys.
	VaultKeyWrite = Action{Name: "vault.key.write", Level: LevelProject, Role: Maintainer, Scope: ScopeVaultWrite}
	// VaultAdmin rotates the key-encryption key (site administrators).
	VaultAdmin = Action{Name: "vault.admin", Level: LevelSiteAdmin, Scope: ScopeAdmin}
)

// Decision is the outcome of Decide.
type Decision struct {
	Allow bool
	// Kind is apperr.Unauthenticated or apperr.Forbidden when denied.
	Kind apperr.Kind
	// Reason is safe to show to the subject.
	Reason string
}

func deny(k apperr.Kind, format string, args ...any) Decision {
	return Decision{Kind: k, Reason: fmt.Sprintf(format, args...)}
}

var allow = Decision{Allow: true}

// Decide is the one place where Rampart decides whether subject s may do a
// to r.
func Decide(s Subject, a Action, r Resource) Decision {
	if a.Level == LevelPublic {
		return allow
	}
	if a.Level == 0 {
		return deny(apperr.Forbidden, "action %q has no access level", a.Name)
	}
	if !s.Authenticated() {
		return deny(apperr.Unauthenticated, "sign in first")
	}
	if a.Scope != "" && !s.HasScope(a.Scope) {
		return deny(apperr.Forbidden, "the credential lacks the %q scope", a.Scope)
	}
	if s.SiteAdmin {
		return allow
	}
	switch a.Level {
	case LevelAuthed:
		return allow
	case LevelHuman:
		if s.Service {
			return deny(apperr.Forbidden, "service accounts may not %s", a.Name)
		}
		return allow
	case LevelSelf:
		if r.OwnerID != 0 && r.OwnerID == s.UserID {
			return allow
		}
		return deny(apperr.Forbidden, "only the owner may do this")
	case LevelSiteAdmin:
		return deny(apperr.Forbidden, "only site administrators may do this")
	case LevelOrg, LevelProject:
		if r.OrgID == 0 {
			return deny(apperr.Forbidden, "no org given")
		}
		role := s.OrgRole(r.OrgID)
		if a.Level == LevelProject {
			role = s.ProjectRole(r.OrgID, r.ProjectID)
		}
		if role == NoRole {
			return deny(apperr.Forbidden, "you are not a member")
		}
		if r.RequireMFA && !s.MFA && !s.Service {
			return deny(apperr.Forbidden, "this org requires two-factor authentication: enrol a second factor in your account settings")
		}
		if role < a.Role {
			return deny(apperr.Forbidden, "%s needs the %s role (you have %s)", a.Name, a.Role, role)
		}
		if r.Grant > role {
			return deny(apperr.Forbidden, "you cannot grant the %s role: it is above your own (%s)", r.Grant, role)
		}
		return allow
	}
	return deny(apperr.Forbidden, "unknown access level")
}

// Check returns nil when s may do a to r, or a classified error.
func Check(s Subject, a Action, r Resource) error {
	d := Decide(s, a, r)
	if d.Allow {
		return nil
	}
	return apperr.E(d.Kind, "%s", d.Reason)
}

// Gateway actions. A project's routes are read by its readers and changed
// by the owners of its org (a route exposes a host); site routes, the
// route list of the whole gateway and its security events are for site
// administrators.
var (
	GatewayRoutesRead  = Action{Name: "gateway.routes.read", Level: LevelProject, Role: Reader, Scope: ScopeOrgRead}
	GatewayRoutesWrite = Action{Name: "gateway.routes.write", Level: LevelOrg, Role: Owner, Scope: ScopeOrgWrite}
	GatewayAdmin       = Action{Name: "gateway.admin", Level: LevelSiteAdmin, Scope: ScopeAdmin}
	GatewayEventsRead  = Action{Name: "gateway.events.read", Level: LevelSiteAdmin, Scope: ScopeAuditRead}
)

// Actions of source hosting (package scm). Repositories belong to an org
// and optionally to one of its projects: actions are checked against the
// project when the repository has one (so project grants apply), else
// against the org.
var (
	// RepoReadPublic reads a repository marked public: anyone, even
	// anonymous callers, may clone it.
	RepoReadPublic = Action{Name: "repo.read.public", Level: LevelPublic}
	// RepoRead clones and fetches, and reads pull requests, checks and
	// comments.
	RepoRead = Action{Name: "repo.read", Level: LevelProject, Role: Reader, Scope: ScopeRepoRead}
	// RepoWrite pushes, opens, reviews and merges pull requests (as branch
	// protection allows) and posts status checks.
	RepoWrite = Action{Name: "repo.write", Level: LevelProject, Role: Developer, Scope: ScopeRepoWrite}
	// RepoCreate creates a repository in an org or project.
	RepoCreate = Action{Name: "repo.create", Level: LevelProject, Role: Maintainer, Scope: ScopeRepoWrite}
	// RepoAdmin changes settings, branch protection and webhooks.
	RepoAdmin = Action{Name: "repo.admin", Level: LevelProject, Role: Maintainer, Scope: ScopeRepoWrite}
	// RepoDelete deletes a repository with its history.
	RepoDelete = Action{Name: "repo.delete", Level: LevelProject, Role: Owner, Scope: ScopeRepoWrite}
	// OrgHooksAdmin manages org-wide webhooks, which see every repository
	// of the org.
	OrgHooksAdmin = Action{Name: "org.webhooks.admin", Level: LevelOrg, Role: Owner, Scope: ScopeOrgWrite}
)

// Actions of end-user realms (package identity/realm). An org's realm —
// its settings, mail server and end users — is for the owners of the org:
// it decides who reaches the org's applications behind the gateway. Its
// public keys (JWKS) are for anyone.
var (
	RealmRead  = Action{Name: "realm.read", Level: LevelOrg, Role: Owner, Scope: ScopeOrgRead}
	RealmWrite = Action{Name: "realm.write", Level: LevelOrg, Role: Owner, Scope: ScopeOrgWrite}
	RealmKeys  = Action{Name: "realm.keys", Level: LevelPublic}
)

// ScopeRunner is the scope of remote runners' tokens (package pipeline).
const ScopeRunner Scope = "runner"

// Actions of pipelines (package pipeline), checked against the
// repository's project (or org) like the repository's own actions.
var (
	// PipelineRead lists runs and reads their jobs, logs and artifacts.
	PipelineRead = Action{Name: "pipeline.read", Level: LevelProject, Role: Reader, Scope: ScopePipelineRead}
	// PipelineRun starts a run manually, cancels and re-runs runs.
	PipelineRun = Action{Name: "pipeline.run", Level: LevelProject, Role: Developer, Scope: ScopePipelineWrite}
	// RunnerJobs takes queued jobs of every repository, with their secrets,
	// and reports their logs and ends: remote runners, with a site
	// administrator's token scoped to runner.
	RunnerJobs = Action{Name: "pipeline.runner", Level: LevelSiteAdmin, Scope: ScopeRunner}
)

// Actions of delivery (package deploy). Everyone in a project sees its
// environments, releases and deployments; developers record releases
// and ask for deployments (their tokens need pipeline:write, as a
// pipeline's deploy step has); maintainers approve them (never their
// own); environments, their protection rules and their service
// connections are the project owners' (they decide what production
// demands).
var (
	DeployRead     = Action{Name: "deploy.read", Level: LevelProject, Role: Reader, Scope: ScopePipelineRead}
	DeployRelease  = Action{Name: "deploy.release.create", Level: LevelProject, Role: Developer, Scope: ScopePipelineWrite}
	DeployCreate   = Action{Name: "deploy.deployment.create", Level: LevelProject, Role: Developer, Scope: ScopePipelineWrite}
	DeployApprove  = Action{Name: "deploy.deployment.approve", Level: LevelProject, Role: Maintainer, Scope: ScopePipelineWrite}
	DeployEnvAdmin = Action{Name: "deploy.environment.admin", Level: LevelProject, Role: Owner, Scope: ScopeOrgWrite}
)

// Pipeline deploy steps (package deploy, through the app's wiring): a
// run's deploy step acts as the run's user with a credential holding only
// ScopeDeployStep, which no other action accepts, so the step can record
// a release and deploy it in the run's project and nothing else. The
// environment's protection rules (branches, approvals, gates) apply
// besides.
const ScopeDeployStep Scope = "deploy:pipeline-step"

var (
	DeployPipelineStep = Action{Name: "deploy.pipeline_step", Level: LevelProject, Role: Developer, Scope: ScopeDeployStep}
)
