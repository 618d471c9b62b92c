package secrets_test

import (
	"encoding/json"
	"os/exec"
	"testing"

	"github.com/rampartsec/rampart/internal/testenv"
)

// goModDownload fetches a module through the Go module proxy (or finds it
// in the module cache) and returns its directory.
func goModDownload(t testing.TB, modVersion string) string {
	t.Helper()
	goBin := testenv.LookPath(t, "go")
	out, err := exec.Command(goBin, "mod", "download", "-json", modVersion).Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &info); jerr != nil || err != nil || info.Dir == "" {
		testenv.Missing(t, "go mod download "+modVersion+": "+info.Error)
	}
	return info.Dir
}

// goroot returns the Go installation's root.
func goroot(t testing.TB) string {
	t.Helper()
	goBin := testenv.LookPath(t, "go")
	out, err := exec.Command(goBin, "env", "GOROOT").Output()
	if err != nil || len(out) < 2 {
		testenv.Missing(t, "go env GOROOT")
	}
	return string(out[:len(out)-1])
}
