package httpapi

import (
	"net/http"

	"github.com/rampartsec/rampart/internal/authz"
)

// coreRoutes is the whole REST surface of the foundation, in one table.
// Each route names the action authz checks and what it is checked against.
func (s *Server) coreRoutes() []Route {
	return []Route{
		// Sign-in for scripts, and public metadata.
		{Method: "POST", Path: Prefix + "/auth/login", Tag: "auth", Summary: "Sign in with a password (and a one-time code) and receive a token",
			Action: authz.Public, Request: LoginRequest{}, Response: LoginResponse{}, Status: http.StatusCreated, Handler: s.login},
		{Method: "GET", Path: Prefix + "/scopes", Tag: "auth", Summary: "List token scopes",
			Action: authz.Public, Response: []Scope{}, Handler: s.listScopes},
		{Method: "GET", Path: Prefix + "/openapi.json", Tag: "meta", Summary: "This API's OpenAPI 3.1 document",
			Action: authz.Public, Handler: s.openAPI},

		// The caller's own account.
		{Method: "GET", Path: Prefix + "/user", Tag: "account", Summary: "Show the signed-in user",
			Action: authz.SelfRead, On: OnSelf, Response: Me{}, Handler: s.me},
		{Method: "PATCH", Path: Prefix + "/user", Tag: "account", Summary: "Change your display name or e-mail",
			Action: authz.SelfWrite, On: OnSelf, Request: UpdateProfileRequest{}, Response: User{}, Handler: s.updateProfile},
		{Method: "POST", Path: Prefix + "/user/password", Tag: "account", Summary: "Change your password",
			Action: authz.SelfSecurity, On: OnSelf, Request: ChangePasswordRequest{}, Status: http.StatusNoContent, Handler: s.changePassword},
		{Method: "GET", Path: Prefix + "/user/tokens", Tag: "account", Summary: "List your tokens",
			Action: authz.SelfRead, On: OnSelf, Response: []Token{}, Handler: s.listTokens},
		{Method: "POST", Path: Prefix + "/user/tokens", Tag: "account", Summary: "Create a token (its secret is shown once)",
			Action: authz.SelfWrite, On: OnSelf, Request: CreateTokenRequest{}, Response: CreatedToken{}, Status: http.StatusCreated, Handler: s.createToken},
		{Method: "DELETE", Path: Prefix + "/user/tokens/{id}", Tag: "account", Summary: "Revoke one of your tokens",
			Action: authz.SelfWrite, On: OnSelf, Status: http.StatusNoContent, Handler: s.revokeToken},

		// Users.
		{Method: "GET", Path: Prefix + "/users", Tag: "users", Summary: "List users (filter with ?q=)",
			Action: authz.UsersRead, Response: []User{}, Handler: s.listUsers},
		{Method: "POST", Path: Prefix + "/users", Tag: "users", Summary: "Create a user (site administrators)",
			Action: authz.UsersAdmin, Request: CreateUserRequest{}, Response: User{}, Status: http.StatusCreated, Handler: s.createUser},
		{Method: "GET", Path: Prefix + "/users/{username}", Tag: "users", Summary: "Show a user",
			Action: authz.UsersRead, Response: User{}, Handler: s.getUser},
		{Method: "PATCH", Path: Prefix + "/users/{username}", Tag: "users", Summary: "Disable or enable a user (site administrators)",
			Action: authz.UsersAdmin, Request: UpdateUserRequest{}, Response: User{}, Handler: s.updateUser},

		// Orgs.
		{Method: "GET", Path: Prefix + "/orgs", Tag: "orgs", Summary: "List your orgs (every org for site administrators)",
			Action: authz.OrgList, Response: []Org{}, Handler: s.listOrgs},
		{Method: "POST", Path: Prefix + "/orgs", Tag: "orgs", Summary: "Create an org; you become its owner",
			Action: authz.OrgCreate, Request: CreateOrgRequest{}, Response: Org{}, Status: http.StatusCreated, Handler: s.createOrg},
		{Method: "GET", Path: Prefix + "/orgs/{org}", Tag: "orgs", Summary: "Show an org",
			Action: authz.OrgRead, On: OnOrg, Response: Org{}, Handler: s.getOrg},
		{Method: "PATCH", Path: Prefix + "/orgs/{org}", Tag: "orgs", Summary: "Change org settings (display name, required MFA)",
			Action: authz.OrgUpdate, On: OnOrg, Request: UpdateOrgRequest{}, Response: Org{}, Handler: s.updateOrg},
		{Method: "DELETE", Path: Prefix + "/orgs/{org}", Tag: "orgs", Summary: "Delete an org with everything in it",
			Action: authz.OrgDelete, On: OnOrg, Status: http.StatusNoContent, Handler: s.deleteOrg},
		{Method: "GET", Path: Prefix + "/orgs/{org}/members", Tag: "orgs", Summary: "List org members",
			Action: authz.OrgRead, On: OnOrg, Response: []Member{}, Handler: s.listMembers},
		{Method: "PUT", Path: Prefix + "/orgs/{org}/members/{username}", Tag: "orgs", Summary: "Add a member or change their role",
			Action: authz.OrgMembersWrite, On: OnOrg, Request: RoleRequest{}, Response: Member{}, Handler: s.setMember},
		{Method: "DELETE", Path: Prefix + "/orgs/{org}/members/{username}", Tag: "orgs", Summary: "Remove a member",
			Action: authz.OrgMembersWrite, On: OnOrg, Status: http.StatusNoContent, Handler: s.removeMember},
		{Method: "GET", Path: Prefix + "/orgs/{org}/audit", Tag: "audit", Summary: "Read the org's audit log",
			Action: authz.OrgAuditRead, On: OnOrg, Response: []AuditEntry{}, Handler: s.orgAudit},

		// Teams.
		{Method: "GET", Path: Prefix + "/orgs/{org}/teams", Tag: "teams", Summary: "List teams",
			Action: authz.OrgRead, On: OnOrg, Response: []Team{}, Handler: s.listTeams},
		{Method: "POST", Path: Prefix + "/orgs/{org}/teams", Tag: "teams", Summary: "Create a team",
			Action: authz.OrgTeamsWrite, On: OnOrg, Request: CreateTeamRequest{}, Response: Team{}, Status: http.StatusCreated, Handler: s.createTeam},
		{Method: "DELETE", Path: Prefix + "/orgs/{org}/teams/{team}", Tag: "teams", Summary: "Delete a team",
			Action: authz.OrgTeamsWrite, On: OnOrg, Status: http.StatusNoContent, Handler: s.deleteTeam},
		{Method: "GET", Path: Prefix + "/orgs/{org}/teams/{team}/members", Tag: "teams", Summary: "List team members",
			Action: authz.OrgRead, On: OnOrg, Response: []User{}, Handler: s.listTeamMembers},
		{Method: "PUT", Path: Prefix + "/orgs/{org}/teams/{team}/members/{username}", Tag: "teams", Summary: "Add an org member to a team",
			Action: authz.OrgTeamsWrite, On: OnOrg, Status: http.StatusNoContent, Handler: s.addTeamMember},
		{Method: "DELETE", Path: Prefix + "/orgs/{org}/teams/{team}/members/{username}", Tag: "teams", Summary: "Remove a user from a team",
			Action: authz.OrgTeamsWrite, On: OnOrg, Status: http.StatusNoContent, Handler: s.removeTeamMember},

		// Projects.
		{Method: "GET", Path: Prefix + "/orgs/{org}/projects", Tag: "projects", Summary: "List the org's projects",
			Action: authz.OrgRead, On: OnOrg, Response: []Project{}, Handler: s.listProjects},
		{Method: "POST", Path: Prefix + "/orgs/{org}/projects", Tag: "projects", Summary: "Create a project",
			Action: authz.ProjectCreate, On: OnOrg, Request: CreateProjectRequest{}, Response: Project{}, Status: http.StatusCreated, Handler: s.createProject},
		{Method: "GET", Path: Prefix + "/orgs/{org}/projects/{project}", Tag: "projects", Summary: "Show a project",
			Action: authz.ProjectRead, On: OnProject, Response: Project{}, Handler: s.getProject},
		{Method: "DELETE", Path: Prefix + "/orgs/{org}/projects/{project}", Tag: "projects", Summary: "Delete a project",
			Action: authz.ProjectDelete, On: OnProject, Status: http.StatusNoContent, Handler: s.deleteProject},
		{Method: "GET", Path: Prefix + "/orgs/{org}/projects/{project}/grants", Tag: "projects", Summary: "List who holds roles on a project",
			Action: authz.ProjectRead, On: OnProject, Response: []Grant{}, Handler: s.listGrants},
		{Method: "PUT", Path: Prefix + "/orgs/{org}/projects/{project}/grants/users/{username}", Tag: "projects", Summary: "Give a user a project role",
			Action: authz.ProjectMembersWrite, On: OnProject, Request: RoleRequest{}, Status: http.StatusNoContent, Handler: s.grantUser},
		{Method: "DELETE", Path: Prefix + "/orgs/{org}/projects/{project}/grants/users/{username}", Tag: "projects", Summary: "Take a user's project role away",
			Action: authz.ProjectMembersWrite, On: OnProject, Status: http.StatusNoContent, Handler: s.revokeUser},
		{Method: "PUT", Path: Prefix + "/orgs/{org}/projects/{project}/grants/teams/{team}", Tag: "projects", Summary: "Give a team a project role",
			Action: authz.ProjectMembersWrite, On: OnProject, Request: RoleRequest{}, Status: http.StatusNoContent, Handler: s.grantTeam},
		{Method: "DELETE", Path: Prefix + "/orgs/{org}/projects/{project}/grants/teams/{team}", Tag: "projects", Summary: "Take a team's project role away",
			Action: authz.ProjectMembersWrite, On: OnProject, Status: http.StatusNoContent, Handler: s.revokeTeam},

		// Service accounts.
		{Method: "GET", Path: Prefix + "/orgs/{org}/service-accounts", Tag: "service-accounts", Summary: "List service accounts",
			Action: authz.OrgRead, On: OnOrg, Response: []ServiceAccount{}, Handler: s.listServiceAccounts},
		{Method: "POST", Path: Prefix + "/orgs/{org}/service-accounts", Tag: "service-accounts", Summary: "Create a service account",
			Action: authz.OrgServiceWrite, On: OnOrg, Request: CreateServiceAccountRequest{}, Response: ServiceAccount{}, Status: http.StatusCreated, Handler: s.createServiceAccount},
		{Method: "DELETE", Path: Prefix + "/orgs/{org}/service-accounts/{name}", Tag: "service-accounts", Summary: "Delete a service account and its tokens",
			Action: authz.OrgServiceWrite, On: OnOrg, Status: http.StatusNoContent, Handler: s.deleteServiceAccount},
		{Method: "GET", Path: Prefix + "/orgs/{org}/service-accounts/{name}/tokens", Tag: "service-accounts", Summary: "List a service account's tokens",
			Action: authz.OrgServiceWrite, On: OnOrg, Response: []Token{}, Handler: s.listServiceTokens},
		{Method: "POST", Path: Prefix + "/orgs/{org}/service-accounts/{name}/tokens", Tag: "service-accounts", Summary: "Create a token for a service account",
			Action: authz.OrgServiceWrite, On: OnOrg, Request: CreateTokenRequest{}, Response: CreatedToken{}, Status: http.StatusCreated, Handler: s.createServiceToken},
		{Method: "DELETE", Path: Prefix + "/orgs/{org}/service-accounts/{name}/tokens/{id}", Tag: "service-accounts", Summary: "Revoke a service account token",
			Action: authz.OrgServiceWrite, On: OnOrg, Status: http.StatusNoContent, Handler: s.revokeServiceToken},

		// Audit log (site-wide).
		{Method: "GET", Path: Prefix + "/audit", Tag: "audit", Summary: "Read the audit log, newest first (filters: actor, action, outcome, org, before, limit)",
			Action: authz.AuditRead, Response: []AuditEntry{}, Handler: s.listAudit},
		{Method: "GET", Path: Prefix + "/audit/export", Tag: "audit", Summary: "Export the audit log as JSON lines, oldest first",
			Action: authz.AuditRead, Handler: s.exportAudit},
		{Method: "POST", Path: Prefix + "/audit/verify", Tag: "audit", Summary: "Verify the audit log's hash chain",
			Action: authz.AuditRead, Response: AuditReport{}, Handler: s.verifyAudit},
	}
}
