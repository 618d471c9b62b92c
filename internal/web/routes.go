package web

import "github.com/rampartsec/rampart/internal/authz"

// corePages lists the foundation's pages.
func (s *Server) corePages() []Page {
	return []Page{
		{Method: "GET", Path: "/{$}", Handler: s.homePage},
		{Method: "GET", Path: "/login", Anonymous: true, Handler: s.loginPage},
		{Method: "POST", Path: "/login", Anonymous: true, Handler: s.loginSubmit},
		{Method: "GET", Path: "/login/verify", Anonymous: true, Handler: s.verifyPage},
		{Method: "POST", Path: "/login/verify", Anonymous: true, Handler: s.verifySubmit},
		{Method: "GET", Path: "/login/enrol", Anonymous: true, Handler: s.enrolPage},
		{Method: "POST", Path: "/login/enrol", Anonymous: true, Handler: s.enrolSubmit},
		{Method: "POST", Path: "/login/enrol/webauthn/begin", Anonymous: true, Handler: s.fetchHandler(s.enrolKeyBegin)},
		{Method: "POST", Path: "/login/enrol/webauthn/finish", Anonymous: true, Handler: s.fetchHandler(s.enrolKeyFinish)},
		{Method: "POST", Path: "/logout", Anonymous: true, Handler: s.logout},
		{Method: "POST", Path: "/login/webauthn/begin", Anonymous: true, Handler: s.fetchHandler(s.webauthnLoginBegin)},
		{Method: "POST", Path: "/login/webauthn/finish", Anonymous: true, Handler: s.fetchHandler(s.webauthnLoginFinish)},
		{Method: "POST", Path: "/login/passkey/begin", Anonymous: true, Handler: s.fetchHandler(s.passkeyBegin)},
		{Method: "POST", Path: "/login/passkey/finish", Anonymous: true, Handler: s.fetchHandler(s.passkeyFinish)},

		{Method: "GET", Path: "/account", Handler: s.accountPage},
		{Method: "POST", Path: "/account/profile", Handler: s.profileSubmit},
		{Method: "POST", Path: "/account/password", Handler: s.passwordSubmit},
		{Method: "GET", Path: "/account/totp", Handler: s.totpPage},
		{Method: "POST", Path: "/account/totp", Handler: s.totpSubmit},
		{Method: "POST", Path: "/account/totp/remove", Handler: s.totpRemove},
		{Method: "POST", Path: "/account/recovery-codes", Handler: s.recoverySubmit},
		{Method: "POST", Path: "/account/webauthn/register/begin", Handler: s.fetchHandler(s.webauthnRegisterBegin)},
		{Method: "POST", Path: "/account/webauthn/register/finish", Handler: s.fetchHandler(s.webauthnRegisterFinish)},
		{Method: "POST", Path: "/account/webauthn/{id}/remove", Handler: s.webauthnRemove},
		{Method: "POST", Path: "/account/tokens", Handler: s.tokenSubmit},
		{Method: "POST", Path: "/account/tokens/{id}/revoke", Handler: s.tokenRevoke},
		{Method: "POST", Path: "/account/sessions/{id}/revoke", Handler: s.sessionRevoke},

		{Method: "GET", Path: "/orgs", Handler: s.orgsPage},
		{Method: "POST", Path: "/orgs", Handler: s.orgCreate},
		{Method: "GET", Path: "/orgs/{org}", Handler: s.orgTab("members")},
		{Method: "POST", Path: "/orgs/{org}/members", Handler: s.memberSet},
		{Method: "POST", Path: "/orgs/{org}/members/{username}/remove", Handler: s.memberRemove},
		{Method: "GET", Path: "/orgs/{org}/teams", Handler: s.orgTab("teams")},
		{Method: "POST", Path: "/orgs/{org}/teams", Handler: s.teamCreate},
		{Method: "GET", Path: "/orgs/{org}/teams/{team}", Handler: s.teamPage},
		{Method: "POST", Path: "/orgs/{org}/teams/{team}/members", Handler: s.teamMemberAdd},
		{Method: "POST", Path: "/orgs/{org}/teams/{team}/members/{username}/remove", Handler: s.teamMemberRemove},
		{Method: "POST", Path: "/orgs/{org}/teams/{team}/delete", Handler: s.teamDelete},
		{Method: "GET", Path: "/orgs/{org}/projects", Handler: s.orgTab("projects")},
		{Method: "POST", Path: "/orgs/{org}/projects", Handler: s.projectCreate},
		{Method: "GET", Path: "/orgs/{org}/projects/{project}", Handler: s.projectPage},
		{Method: "POST", Path: "/orgs/{org}/projects/{project}/grants", Handler: s.grantSubmit},
		{Method: "POST", Path: "/orgs/{org}/projects/{project}/delete", Handler: s.projectDelete},
		{Method: "GET", Path: "/orgs/{org}/service-accounts", Handler: s.orgTab("service-accounts")},
		{Method: "POST", Path: "/orgs/{org}/service-accounts", Handler: s.serviceAccountCreate},
		{Method: "POST", Path: "/orgs/{org}/service-accounts/{name}/tokens", Handler: s.serviceAccountToken},
		{Method: "POST", Path: "/orgs/{org}/service-accounts/{name}/delete", Handler: s.serviceAccountDelete},
		{Method: "GET", Path: "/orgs/{org}/settings", Handler: s.orgTab("settings")},
		{Method: "POST", Path: "/orgs/{org}/settings", Handler: s.settingsSubmit},
		{Method: "POST", Path: "/orgs/{org}/delete", Handler: s.orgDelete},
		{Method: "GET", Path: "/orgs/{org}/audit", Handler: s.orgTab("audit")},

		{Method: "GET", Path: "/admin/users", Handler: s.usersPage},
		{Method: "POST", Path: "/admin/users", Handler: s.userCreate},
		{Method: "POST", Path: "/admin/users/{username}/disable", Handler: s.userDisable(true)},
		{Method: "POST", Path: "/admin/users/{username}/enable", Handler: s.userDisable(false)},
		{Method: "GET", Path: "/admin/audit", Handler: s.auditPage},
		{Method: "POST", Path: "/admin/audit/verify", Handler: s.auditVerify},
	}
}

// coreNav lists the foundation's navigation entries; later components add
// theirs (Repositories, Pipelines, Registry, …) with their own Order.
func (s *Server) coreNav() []NavItem {
	siteAdmin := func(sub authz.Subject) bool { return sub.SiteAdmin }
	return []NavItem{
		{Label: "Organisations", Path: "/orgs", Order: 10},
		{Label: "Users", Path: "/admin/users", Order: 900, Show: siteAdmin},
		{Label: "Audit log", Path: "/admin/audit", Order: 910, Show: siteAdmin},
	}
}
