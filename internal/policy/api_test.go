package policy_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/policy"
	"github.com/rampartsec/rampart/internal/problem"
)

// TestAPI_BadInputChangesNothing: malformed, oversized or misfitting
// inputs get a clear 4xx and no decision is recorded.
func TestAPI_BadInputChangesNothing(t *testing.T) {
	a := apptest.Start(t, apptest.WithConfig(func(c *config.Config) { c.Limits.MaxBodyBytes = 8 << 20 }))
	admin := a.Client(t, a.AdminToken(t))
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "acme"})
	decisions := httpapi.Prefix + "/orgs/acme/policy/decisions"
	admission := httpapi.Prefix + "/orgs/acme/admission/prod"
	big := `{"gate": "image", "subject": "s", "input": {"x": "` + strings.Repeat("a", policy.MaxInput) + `"}}`
	tests := []struct {
		name, path, body string
		status           int
		detail           string
	}{
		{"unknown gate", decisions, `{"gate": "deploy", "subject": "s", "input": {}}`, 400, `unknown gate "deploy"`},
		{"no input", decisions, `{"gate": "image", "subject": "s"}`, 400, "input is required"},
		{"no subject", decisions, `{"gate": "image", "input": {"action": "pull", "image": {"reference": "r", "digest": ""}}}`, 400, "subject is required"},
		{"input not an object", decisions, `{"gate": "image", "subject": "s", "input": [1]}`, 400, "must be a JSON object"},
		{"input misfits the gate", decisions, `{"gate": "image", "subject": "s", "input": {"action": "pull"}}`, 400, "at /: missing property 'image'"},
		{"input too large", decisions, big, 413, "over the 4194304-byte limit"},
		{"unknown field", decisions, `{"gate": "image", "subject": "s", "input": {}, "mode": "off"}`, 400, `unknown field "mode"`},
		{"review not JSON", admission, `{"apiVersion": `, 400, "not an AdmissionReview"},
		{"review of another version", admission, `{"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {"uid": "u"}}`, 400, "set admissionReviewVersions: [v1]"},
		{"review without uid", admission, `{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}}`, 400, "no request uid"},
		{"review with a bad operation", admission, `{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u", "kind": {"kind": "Pod"}, "operation": "EXPLODE"}}`, 400, "at /request/operation"},
		{"bad environment", httpapi.Prefix + "/orgs/acme/admission/Prod!", `{}`, 400, "environment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := admin.Do("POST", tt.path, tt.body)
			var p problem.Details
			_ = json.Unmarshal(res.Body, &p)
			if res.Status != tt.status || !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("%d %q, want %d containing %q", res.Status, p.Detail, tt.status, tt.detail)
			}
		})
	}
	var ds []policy.Decision
	admin.Must(http.StatusOK, "GET", decisions, nil).Decode(t, &ds)
	if len(ds) != 0 {
		t.Errorf("refused requests recorded %d decisions", len(ds))
	}
	// A dry run answers and records nothing either.
	var d policy.Decision
	admin.Must(http.StatusOK, "POST", httpapi.Prefix+"/orgs/acme/policy/evaluate", policy.DecideRequest{Gate: "image", Subject: "image:x",
		Input: []byte(`{"action": "pull", "image": {"reference": "r", "digest": ""}}`)}).Decode(t, &d)
	if d.Allow || !d.DryRun || d.ID != "" || d.Deny[0].Policy != "RMP-IMG-001" {
		t.Errorf("dry run = %+v", d)
	}
	admin.Must(http.StatusOK, "GET", decisions, nil).Decode(t, &ds)
	if len(ds) != 0 {
		t.Errorf("a dry run was recorded")
	}
	// The schema of every gate is served.
	for _, g := range policy.Gates() {
		res := admin.Must(http.StatusOK, "GET", httpapi.Prefix+"/policy/gates/"+string(g)+"/schema", nil)
		if !json.Valid(res.Body) || !strings.Contains(string(res.Body), `"$schema"`) {
			t.Errorf("schema of %s: %s", g, res.Body)
		}
	}
}
