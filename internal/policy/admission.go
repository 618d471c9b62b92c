package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/identity"
)

// Kubernetes AdmissionReview v1, as much of it as the webhook reads and
// writes (admission.k8s.io/v1; Rampart does not import Kubernetes' Go
// modules).

// AdmissionReview is the document a ValidatingWebhookConfiguration sends
// and the webhook answers with.
type AdmissionReview struct {
	APIVersion string             `json:"apiVersion"`
	Kind       string             `json:"kind"`
	Request    *AdmissionRequest  `json:"request,omitempty"`
	Response   *AdmissionResponse `json:"response,omitempty"`
}

// AdmissionRequest is what the API server asks about.
type AdmissionRequest struct {
	UID       string           `json:"uid"`
	Kind      GroupVersionKind `json:"kind"`
	Namespace string           `json:"namespace,omitempty"`
	Name      string           `json:"name,omitempty"`
	Operation string           `json:"operation"`
	Object    json.RawMessage  `json:"object,omitempty"`
}

// GroupVersionKind names a Kubernetes kind.
type GroupVersionKind struct {
	Group   string `json:"group"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
}

// AdmissionResponse is the webhook's answer.
type AdmissionResponse struct {
	UID     string `json:"uid"`
	Allowed bool   `json:"allowed"`
	// Status carries the message kubectl shows for a denial.
	Status *AdmissionStatus `json:"status,omitempty"`
	// Warnings are shown by kubectl (and other clients) even when the
	// request is allowed.
	Warnings []string `json:"warnings,omitempty"`
	// AuditAnnotations land in the cluster's audit log.
	AuditAnnotations map[string]string `json:"auditAnnotations,omitempty"`
}

// AdmissionStatus is a metav1.Status, reduced.
type AdmissionStatus struct {
	Code    int32  `json:"code,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// admissionAPIVersion is the only version served.
const admissionAPIVersion = "admission.k8s.io/v1"

// Limits of Kubernetes' warnings: longer ones are truncated by the API
// server, so Rampart keeps them short itself.
const (
	maxWarning  = 120
	maxWarnings = 20
	maxMessage  = 4000
)

var environmentName = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$`)

// ValidEnvironment checks an environment name as webhook URLs carry it.
func ValidEnvironment(env string) error {
	if !environmentName.MatchString(env) {
		return apperr.InvalidField("environment", "environment %q: lower-case letters, digits, '.', '_' and '-', at most 63", env)
	}
	return nil
}

// Admit judges an AdmissionReview v1 for the org's cluster in
// environment env, records the decision, and returns the review to
// answer with. A denial carries every reason and what to change; warnings
// come back as Kubernetes warnings; the decision's id is an audit
// annotation. A review that is not an AdmissionReview v1 is an Invalid
// error (the API server then applies the webhook's failurePolicy). When
// the policies cannot be evaluated or the decision cannot be recorded,
// enforce fails closed: the review is denied, with the reason.
func (s *Service) Admit(ctx context.Context, org identity.Org, env string, body []byte) (AdmissionReview, error) {
	if err := ValidEnvironment(env); err != nil {
		return AdmissionReview{}, err
	}
	if len(body) > MaxInput {
		return AdmissionReview{}, apperr.E(apperr.TooLarge, "the AdmissionReview is %d bytes, over the %d-byte limit", len(body), MaxInput)
	}
	// The body is decoded once: the same map is checked here, checked
	// against the gate's schema, and (less the volatile fields) becomes
	// the policies' input.
	review, err := parseInput(GateAdmission, body)
	if err != nil {
		return AdmissionReview{}, apperr.Wrap(err, apperr.KindOf(err), "the body is not an AdmissionReview: "+apperr.Message(err))
	}
	apiVersion, _ := review["apiVersion"].(string)
	kind, _ := review["kind"].(string)
	req, _ := review["request"].(map[string]any)
	uid, _ := req["uid"].(string)
	switch {
	case apiVersion != admissionAPIVersion || kind != "AdmissionReview":
		return AdmissionReview{}, apperr.E(apperr.Invalid, "want an AdmissionReview of %s (set admissionReviewVersions: [v1]), got kind %q of %q",
			admissionAPIVersion, clip(kind, 60), clip(apiVersion, 60))
	case uid == "":
		return AdmissionReview{}, apperr.E(apperr.Invalid, "the AdmissionReview has no request uid")
	}
	subject := admissionSubject(env, req) // before checkInput hides generated names
	doc, err := checkInput(GateAdmission, review)
	if err != nil {
		return AdmissionReview{}, err
	}
	resp := &AdmissionResponse{UID: uid}
	out := AdmissionReview{APIVersion: admissionAPIVersion, Kind: "AdmissionReview", Response: resp}
	d, err := s.decide(ctx, GateAdmission, Input{OrgID: org.ID, Subject: subject, Environment: env}, doc)
	switch {
	case err != nil && d.ID == "":
		// The review does not fit the gate (a malformed object): that is
		// the caller's error, and the failure policy decides.
		return AdmissionReview{}, err
	case err != nil:
		resp.Status = &AdmissionStatus{Code: http.StatusForbidden, Reason: "Forbidden",
			Message: "Rampart could not record the policy decision, so the request is refused (the gate fails closed); try again"}
		return out, nil
	}
	resp.Allowed = d.Allow
	resp.AuditAnnotations = map[string]string{"decision": d.ID, "revision": clip(d.Revision, 200)}
	if !d.Allow {
		resp.Status = &AdmissionStatus{Code: http.StatusForbidden, Reason: "Forbidden", Message: clip(d.Message(), maxMessage)}
	}
	for _, v := range d.Warnings {
		if len(resp.Warnings) == maxWarnings {
			break
		}
		resp.Warnings = append(resp.Warnings, clip(v.Policy+": "+v.Message, maxWarning))
	}
	for _, v := range d.Expired {
		if len(resp.Warnings) == maxWarnings {
			break
		}
		resp.Warnings = append(resp.Warnings, clip("expired exception "+v.Exception.Where()+" for "+v.Policy, maxWarning))
	}
	return out, nil
}

// admissionSubject names what a review's request asks about:
// k8s:ENV/NAMESPACE/KIND/NAME.
func admissionSubject(env string, req map[string]any) string {
	str := func(m map[string]any, k string) string {
		s, _ := m[k].(string)
		return s
	}
	name := str(req, "name")
	if name == "" {
		obj, _ := req["object"].(map[string]any)
		meta, _ := obj["metadata"].(map[string]any)
		name = str(meta, "name")
		if g := str(meta, "generateName"); name == "" && g != "" {
			name = g + "*"
		}
	}
	ns := str(req, "namespace")
	if ns == "" {
		ns = "-"
	}
	gvk, _ := req["kind"].(map[string]any)
	return clip(strings.Join([]string{"k8s:" + env, ns, str(gvk, "kind"), name}, "/"), 400)
}

// readAdmission reads a webhook request's body, up to MaxInput.
func readAdmission(r *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r.Body, MaxInput+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, apperr.E(apperr.TooLarge, "the AdmissionReview is over the %d-byte limit", mbe.Limit)
		}
		return nil, apperr.Wrap(err, apperr.Invalid, "read the AdmissionReview")
	}
	if n > MaxInput {
		return nil, apperr.E(apperr.TooLarge, "the AdmissionReview is over the %d-byte limit", MaxInput)
	}
	return buf.Bytes(), nil
}
