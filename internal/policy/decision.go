package policy

import (
	"fmt"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/exception"
)

// Mode says what a policy's violations do.
type Mode string

// Modes, strongest first.
const (
	// ModeEnforce: a violation denies.
	ModeEnforce Mode = "enforce"
	// ModeWarn: a violation is shown to the caller as a warning and does
	// not deny.
	ModeWarn Mode = "warn"
	// ModeAudit: a violation is only recorded in the decision log.
	ModeAudit Mode = "audit"
)

// ParseMode reads a mode name.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.TrimSpace(s)); m {
	case ModeEnforce, ModeWarn, ModeAudit:
		return m, nil
	case "audit-only":
		return ModeAudit, nil
	}
	return "", apperr.InvalidField("mode", "unknown mode %q (want enforce, warn or audit)", s)
}

// Violation is one reason a policy gives against an input.
type Violation struct {
	// Policy is the id of the policy that found it.
	Policy string `json:"policy"`
	Title  string `json:"title"`
	// Message says what is wrong.
	Message string `json:"message"`
	// Fix tells the user what to change.
	Fix string `json:"fix"`
	// Mode is the policy's mode for this decision.
	Mode Mode `json:"mode"`
	// IDs are other ids the violation is known by (advisory ids and
	// aliases, scanner rule ids): an exception naming one of them applies.
	IDs []string `json:"ids,omitempty"`
	// Image, Resource, Path and Fingerprint name what the violation is
	// about, when the policy says.
	Image       string `json:"image,omitempty"`
	Resource    string `json:"resource,omitempty"`
	Path        string `json:"path,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	// Exception is the exception that set the violation aside (in
	// Decision.Excepted) or that expired (in Decision.Expired).
	Exception *exception.Exception `json:"exception,omitempty"`
}

// String is the violation as one line for people.
func (v Violation) String() string {
	s := v.Policy + ": " + v.Message
	if v.Fix != "" {
		s += " — fix: " + v.Fix
	}
	return s
}

// Decision is what a gate decided. Its JSON form is stable: callers,
// the decision log and the API all use it.
type Decision struct {
	// ID names the decision in the decision log ("" for dry runs).
	ID      string `json:"id,omitempty"`
	Gate    Gate   `json:"gate"`
	Allow   bool   `json:"allow"`
	OrgID   int64  `json:"-"`
	Subject string `json:"subject,omitempty"`
	// Environment and Repository are the context exceptions and modes
	// were matched in.
	Environment string `json:"environment,omitempty"`
	Repository  string `json:"repository,omitempty"`
	// Revision names the policy bundles the decision used.
	Revision string `json:"revision"`
	// InputDigest is the SHA-256 of the input document (canonical JSON).
	InputDigest string `json:"input_digest"`
	// Deny lists the reasons for a denial: violations of enforced
	// policies, and enforced policies that could not be evaluated.
	Deny []Violation `json:"deny"`
	// Warnings are violations of policies in warn mode.
	Warnings []Violation `json:"warnings"`
	// Audited are violations of policies in audit mode: recorded, not
	// shown to the caller.
	Audited []Violation `json:"audited"`
	// Excepted are violations an exception in force set aside.
	Excepted []Violation `json:"excepted"`
	// Expired are violations that an exception would have set aside had
	// it not expired; they count as if there were no exception.
	Expired []Violation `json:"expired_exceptions"`
	// Errors lists the policies that could not be evaluated (timeouts,
	// runtime errors). Under enforce they deny: the gate fails closed.
	Errors []EvalError `json:"errors"`
	Caller string      `json:"caller,omitempty"`
	At     time.Time   `json:"at"`
	// DurationMS is how long evaluation took, in milliseconds.
	DurationMS float64 `json:"duration_ms"`
	DryRun     bool    `json:"dry_run,omitempty"`
}

// EvalError is a policy that could not be evaluated.
type EvalError struct {
	Policy  string `json:"policy"`
	Mode    Mode   `json:"mode"`
	Message string `json:"message"`
}

// Outcome is "allow", "warn" (allowed with warnings) or "deny".
func (d *Decision) Outcome() string {
	switch {
	case !d.Allow:
		return "deny"
	case len(d.Warnings) > 0:
		return "warn"
	}
	return "allow"
}

// Message explains the decision to the caller in a few lines: why it
// denied and what to change, then the warnings.
func (d *Decision) Message() string {
	var b strings.Builder
	if !d.Allow {
		fmt.Fprintf(&b, "denied by Rampart policy (%s gate, %d reason(s)):", d.Gate, len(d.Deny))
		for _, v := range d.Deny {
			b.WriteString("\n- " + v.String())
		}
	}
	for _, v := range d.Warnings {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		b.WriteString("warning: " + v.String())
	}
	for _, v := range d.Expired {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "note: exception %s for %s expired on %s and no longer applies", v.Exception.Where(), v.Exception.What(), v.Exception.Expires)
	}
	return b.String()
}
