package policy

import (
	"slices"
	"strings"

	"github.com/rampartsec/rampart/internal/apperr"
)

// Gate is a point of the delivery loop where policy decides.
type Gate string

// The gates.
const (
	// GatePreMerge judges a pull request: its checks, approvals and the
	// findings it adds (asked by source hosting before a merge).
	GatePreMerge Gate = "pre-merge"
	// GateImage judges an image on push and on pull: scan summary,
	// signatures, provenance (asked by the registry).
	GateImage Gate = "image"
	// GatePreDeploy judges a release before it is deployed to an
	// environment: digests, signatures, SLSA provenance, vulnerabilities
	// (asked by pipelines and deploy).
	GatePreDeploy Gate = "pre-deploy"
	// GateIaCPlan judges an OpenTofu/Terraform plan in JSON (asked by the
	// iac component before apply).
	GateIaCPlan Gate = "iac-plan"
	// GateAdmission judges a Kubernetes AdmissionReview v1 sent by a
	// ValidatingWebhookConfiguration.
	GateAdmission Gate = "admission"
	// GateRuntime judges what is running, periodically.
	GateRuntime Gate = "runtime"
)

// Gates lists every gate in the order of the loop.
func Gates() []Gate {
	return []Gate{GatePreMerge, GateImage, GatePreDeploy, GateIaCPlan, GateAdmission, GateRuntime}
}

// GateInfo describes a gate.
type GateInfo struct {
	Gate Gate `json:"gate"`
	// Package is the Rego package prefix of the gate's policies.
	Package string `json:"package"`
	Summary string `json:"summary"`
	// Subject says how callers name what the decision was asked for.
	Subject string `json:"subject"`
}

// GateInfos describes every gate.
func GateInfos() []GateInfo {
	info := map[Gate][2]string{
		GatePreMerge:  {"a pull request before merge: checks, approvals, new findings", "pr:ORG/REPO#NUMBER"},
		GateImage:     {"an image on push and pull: scan summary, signatures, provenance", "image:REFERENCE@DIGEST"},
		GatePreDeploy: {"a release before deployment: image digests, signatures, SLSA provenance, vulnerabilities, target environment", "release:NAME@VERSION or run:ID"},
		GateIaCPlan:   {"an OpenTofu/Terraform plan (tofu show -json)", "plan:ORG/REPO@COMMIT or run:ID"},
		GateAdmission: {"a Kubernetes AdmissionReview v1 from a ValidatingWebhookConfiguration", "k8s:ENVIRONMENT/NAMESPACE/KIND/NAME"},
		GateRuntime:   {"what is running in an environment, checked periodically", "runtime:ENVIRONMENT"},
	}
	var out []GateInfo
	for _, g := range Gates() {
		out = append(out, GateInfo{Gate: g, Package: "rampart.gates." + g.pkg(), Summary: info[g][0], Subject: info[g][1]})
	}
	return out
}

// ParseGate reads a gate name.
func ParseGate(s string) (Gate, error) {
	g := Gate(strings.TrimSpace(s))
	if !slices.Contains(Gates(), g) {
		names := make([]string, 0, 6)
		for _, g := range Gates() {
			names = append(names, string(g))
		}
		return "", apperr.InvalidField("gate", "unknown gate %q (want %s)", s, strings.Join(names, ", "))
	}
	return g, nil
}

// pkg is the gate's element of a Rego package path (Rego identifiers have
// no hyphens).
func (g Gate) pkg() string { return strings.ReplaceAll(string(g), "-", "_") }

// gateOfPackage is the inverse of pkg.
func gateOfPackage(elem string) (Gate, bool) {
	for _, g := range Gates() {
		if g.pkg() == elem {
			return g, true
		}
	}
	return "", false
}
