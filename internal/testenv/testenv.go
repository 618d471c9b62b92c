// Package testenv decides what a test does when a prerequisite (a binary, a
// service) is missing: it skips on a developer's machine and fails under
// CI=true, where .ci/run is expected to have installed everything.
package testenv

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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

// GoModule downloads a module version through the Go module proxy (or
// finds it in the module cache) and returns its directory. Tests use it for
// real data such as the Go vulnerability database or published schemas,
// which are never committed to the repository.
func GoModule(t testing.TB, path, version string) string {
	t.Helper()
	gobin := LookPath(t, "go")
	cmd := exec.Command(gobin, "mod", "download", "-json", path+"@"+version)
	cmd.Dir = t.TempDir() // outside any module: nothing to edit
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GO111MODULE=on")
	out, err := cmd.Output()
	var res struct {
		Dir   string
		Error string
	}
	if jerr := json.Unmarshal(out, &res); jerr != nil || res.Dir == "" {
		msg := res.Error
		if msg == "" && err != nil {
			msg = err.Error()
		}
		Missing(t, "go mod download "+path+"@"+version+": "+msg)
	}
	return res.Dir
}

// Tool returns the binary .ci/run builds into .cache/tools at the
// repository root (name-version), or handles it as missing.
func Tool(t testing.TB, name, version string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for ; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		if dir == filepath.Dir(dir) {
			Missing(t, "repository root (go.mod) not found above the test")
		}
	}
	p := filepath.Join(dir, ".cache", "tools", name+"-"+version)
	if _, err := os.Stat(p); err != nil {
		Missing(t, p+" (built by .ci/run)")
	}
	return p
}

// FreeAddr is a 127.0.0.1 address with a TCP port free at the time of the
// call, for a server a test starts that must be told its address up front.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
