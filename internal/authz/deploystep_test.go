package authz

import (
	"slices"
	"testing"
)

// TestDeployPipelineStep: the credential of a pipeline's deploy step
// (ScopeDeployStep) lets a project's developers deploy from a pipeline
// and does nothing else, and no token can be created with it.
func TestDeployPipelineStep(t *testing.T) {
	const org, project = 1, 10
	res := Resource{OrgID: org, ProjectID: project}
	step := func(role Role) Subject {
		return Subject{UserID: 7, Name: "dev", OrgRoles: map[int64]Role{}, ProjectRoles: map[int64]Role{project: role},
			Scopes: []Scope{ScopeDeployStep}, Via: "pipeline"}
	}
	tests := []struct {
		name string
		s    Subject
		a    Action
		want bool
	}{
		{"developer deploys from a pipeline", step(Developer), DeployPipelineStep, true},
		{"maintainer deploys from a pipeline", step(Maintainer), DeployPipelineStep, true},
		{"reader may not", step(Reader), DeployPipelineStep, false},
		{"outsider may not", Subject{UserID: 8, Name: "x", Scopes: []Scope{ScopeDeployStep}, Via: "pipeline"}, DeployPipelineStep, false},
		{"a token without the scope may not", Subject{UserID: 7, ProjectRoles: map[int64]Role{project: Owner}, Scopes: []Scope{ScopePipelineWrite}, Via: "token"}, DeployPipelineStep, false},
	}
	for _, other := range []Action{DeployCreate, DeployRelease, DeployApprove, DeployEnvAdmin, DeployRead, RegistryPush, RegistryPull,
		VaultSecretRead, PipelineRun, ProjectUpdate} {
		tests = append(tests, struct {
			name string
			s    Subject
			a    Action
			want bool
		}{"the step's credential cannot " + other.Name, step(Owner), other, false})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Decide(tt.s, tt.a, res).Allow; got != tt.want {
				t.Errorf("Decide(%s) = %t; want %t", tt.a.Name, got, tt.want)
			}
		})
	}
	if slices.ContainsFunc(Scopes(), func(s ScopeInfo) bool { return s.Name == ScopeDeployStep }) {
		t.Error("the deploy step's scope is listed among token scopes")
	}
	if _, err := ParseScopes([]string{string(ScopeDeployStep)}); err == nil {
		t.Error("ParseScopes accepts the deploy step's scope: tokens could be created with it")
	}
}
