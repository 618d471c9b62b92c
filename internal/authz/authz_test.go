package authz

import (
	"testing"

	"github.com/rampartsec/rampart/internal/apperr"
)

func TestDecide(t *testing.T) {
	const acme, other, proj = 1, 2, 10
	member := func(r Role) Subject {
		return Subject{UserID: 5, OrgRoles: map[int64]Role{acme: r}, MFA: true}
	}
	orgRes := Resource{OrgID: acme}
	projRes := Resource{OrgID: acme, ProjectID: proj}
	tests := []struct {
		name string
		s    Subject
		a    Action
		r    Resource
		want bool
		kind apperr.Kind
	}{
		{"anonymous public", Anonymous, Public, Site, true, 0},
		{"anonymous org read", Anonymous, OrgRead, orgRes, false, apperr.Unauthenticated},
		{"reader reads org", member(Reader), OrgRead, orgRes, true, 0},
		{"reader cannot update org", member(Reader), OrgUpdate, orgRes, false, apperr.Forbidden},
		{"owner updates org", member(Owner), OrgUpdate, orgRes, true, 0},
		{"owner of acme cannot read other", member(Owner), OrgRead, Resource{OrgID: other}, false, apperr.Forbidden},
		{"maintainer creates project", member(Maintainer), ProjectCreate, orgRes, true, 0},
		{"developer cannot create project", member(Developer), ProjectCreate, orgRes, false, apperr.Forbidden},
		{"org role applies to projects", member(Maintainer), ProjectUpdate, projRes, true, 0},
		{"project grant raises org role", Subject{UserID: 5, OrgRoles: map[int64]Role{acme: Reader}, ProjectRoles: map[int64]Role{proj: Maintainer}}, ProjectUpdate, projRes, true, 0},
		{"project grant alone reads project", Subject{UserID: 5, ProjectRoles: map[int64]Role{proj: Reader}}, ProjectRead, projRes, true, 0},
		{"project grant does not open other projects", Subject{UserID: 5, ProjectRoles: map[int64]Role{proj: Owner}}, ProjectRead, Resource{OrgID: acme, ProjectID: 11}, false, apperr.Forbidden},
		{"token without scope", Subject{UserID: 5, OrgRoles: map[int64]Role{acme: Owner}, Scopes: []Scope{ScopeRepoRead}}, OrgRead, orgRes, false, apperr.Forbidden},
		{"token with scope", Subject{UserID: 5, OrgRoles: map[int64]Role{acme: Owner}, Scopes: []Scope{ScopeOrgRead}}, OrgRead, orgRes, true, 0},
		{"admin scope implies all", Subject{UserID: 5, OrgRoles: map[int64]Role{acme: Owner}, Scopes: []Scope{ScopeAdmin}}, OrgUpdate, orgRes, true, 0},
		{"scope never grants a role", Subject{UserID: 5, Scopes: []Scope{ScopeAdmin}}, OrgRead, orgRes, false, apperr.Forbidden},
		{"site admin", Subject{UserID: 1, SiteAdmin: true}, OrgDelete, orgRes, true, 0},
		{"site admin token limited by scope", Subject{UserID: 1, SiteAdmin: true, Scopes: []Scope{ScopeRepoRead}}, UsersAdmin, Site, false, apperr.Forbidden},
		{"non-admin users admin", member(Owner), UsersAdmin, Site, false, apperr.Forbidden},
		{"self", Subject{UserID: 5}, SelfWrite, Resource{OwnerID: 5}, true, 0},
		{"not self", Subject{UserID: 5}, SelfWrite, Resource{OwnerID: 6}, false, apperr.Forbidden},
		{"self security needs admin scope", Subject{UserID: 5, Scopes: []Scope{ScopeUserWrite}}, SelfSecurity, Resource{OwnerID: 5}, false, apperr.Forbidden},
		{"mfa required, not enrolled", Subject{UserID: 5, OrgRoles: map[int64]Role{acme: Owner}}, OrgRead, Resource{OrgID: acme, RequireMFA: true}, false, apperr.Forbidden},
		{"mfa required, enrolled", member(Reader), OrgRead, Resource{OrgID: acme, RequireMFA: true}, true, 0},
		{"service account cannot create orgs", Subject{UserID: 9, Service: true}, OrgCreate, Site, false, apperr.Forbidden},
		{"human creates org", Subject{UserID: 9}, OrgCreate, Site, true, 0},
		{"maintainer grants maintainer", member(Maintainer), ProjectMembersWrite, Resource{OrgID: acme, ProjectID: proj, Grant: Maintainer}, true, 0},
		{"maintainer cannot grant owner", member(Maintainer), ProjectMembersWrite, Resource{OrgID: acme, ProjectID: proj, Grant: Owner}, false, apperr.Forbidden},
		{"project grant bounds what it grants", Subject{UserID: 5, OrgRoles: map[int64]Role{acme: Reader}, ProjectRoles: map[int64]Role{proj: Maintainer}}, ProjectMembersWrite, Resource{OrgID: acme, ProjectID: proj, Grant: Owner}, false, apperr.Forbidden},
		{"site admin grants owner", Subject{UserID: 1, SiteAdmin: true}, ProjectMembersWrite, Resource{OrgID: acme, ProjectID: proj, Grant: Owner}, true, 0},
		{"zero action denied", Subject{UserID: 9, SiteAdmin: true}, Action{Name: "x"}, Site, false, apperr.Forbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.s, tt.a, tt.r)
			if d.Allow != tt.want {
				t.Fatalf("Decide = %+v, want allow=%v", d, tt.want)
			}
			if !d.Allow && d.Kind != tt.kind {
				t.Fatalf("kind = %v, want %v (%s)", d.Kind, tt.kind, d.Reason)
			}
		})
	}
}

func TestParseScopes(t *testing.T) {
	got, err := ParseScopes([]string{"repo:read,registry:pull", "repo:read"})
	if err != nil || len(got) != 2 || got[0] != ScopeRegistryPull {
		t.Fatalf("ParseScopes = %v, %v", got, err)
	}
	if _, err := ParseScopes([]string{"repo:delete"}); !apperr.Is(err, apperr.Invalid) {
		t.Fatalf("unknown scope err = %v", err)
	}
	if _, err := ParseScopes(nil); !apperr.Is(err, apperr.Invalid) {
		t.Fatalf("empty scopes err = %v", err)
	}
}

func TestParseRole(t *testing.T) {
	for _, n := range RoleNames() {
		r, err := ParseRole(n)
		if err != nil || r.String() != n {
			t.Errorf("ParseRole(%q) = %v, %v", n, r, err)
		}
	}
	if _, err := ParseRole("none"); err == nil {
		t.Error("ParseRole(none) accepted")
	}
}
