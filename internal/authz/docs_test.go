package authz

import (
	"os"
	"strings"
	"testing"
)

// TestScopesDocumented keeps docs/scopes.md in step with Scopes().
func TestScopesDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/scopes.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, s := range Scopes() {
		line := "| `" + string(s.Name) + "` | " + s.Description + " |"
		if !strings.Contains(doc, line) {
			t.Errorf("docs/scopes.md lacks the row %q", line)
		}
	}
}
