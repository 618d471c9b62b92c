// Package testenv decides what a test does when a prerequisite (a binary, a
// service) is missing: it skips on a developer's machine and fails under
// CI=true, where .ci/run is expected to have installed everything.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether tests run under CI (CI=true), where a missing
// prerequisite is a failure.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing skips the test, or fails it under CI, explaining what is missing.
func Missing(t testing.TB, what string) {
	t.Helper()
	if InCI() {
		t.Fatalf("prerequisite missing under CI=true: %s", what)
	}
	t.Skipf("prerequisite missing: %s (set CI=true to make this a failure)", what)
}

// LookPath returns the path of a binary or handles it as missing.
func LookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" not found in PATH")
	}
	return p
}

// Env returns the value of an environment variable or handles it as missing.
func Env(t testing.TB, name, hint string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		Missing(t, name+" is not set ("+hint+")")
	}
	return v
}
