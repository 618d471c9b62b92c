package app_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/vault"
)

// TestVaultLeaks_RealLeakAmongManyFindings: a vault secret pushed past
// push protection together with a fixtures file of 400 fake tokens (up to
// 32,000 values to compare, over the vault's 10,000 per call) is still
// marked leaked: the findings are reported in parts (before, the vault
// refused the whole report and the real leak went unnoticed).
func TestVaultLeaks_RealLeakAmongManyFindings(t *testing.T) {
	w := newVWorld(t)
	value := "ghp_" + strings.ToUpper(randomValue(t, "")[:4]) + randomValue(t, "")
	value = value[:40]
	w.setSecret(t, "/projects/web", "GH_TOKEN", value)
	w.commit(t, map[string]string{"README.md": "# app\n"})
	w.gitMust(t, "push", "--quiet", "origin", "main")

	var fx strings.Builder
	for i := 0; i < 400; i++ {
		tok := "ghp_" + strings.ToUpper(randomValue(t, "")[:4]) + randomValue(t, "")
		fx.WriteString("token" + tok[:40])
		fx.WriteString("=")
		fx.WriteString(tok[:40])
		for j := 0; j < 30; j++ {
			fx.WriteString(" w" + randomValue(t, "")[:6])
		}
		fx.WriteString("\n")
	}
	w.commit(t, map[string]string{"deploy/config.env": "GITHUB_TOKEN=" + value + "\n", "testdata/fixtures.txt": fx.String()})
	w.gitMust(t, "push", "-o", "secret-bypass=fixtures", "origin", "main")

	var leaks []vault.LeakJSON
	w.admin.Must(http.StatusOK, "GET", vapi+"/vault/leaks?open=true", nil).Decode(t, &leaks)
	var sec vault.SecretJSON
	w.admin.Must(http.StatusOK, "GET", vapi+"/projects/web/secrets/GH_TOKEN", nil).Decode(t, &sec)
	if len(leaks) == 0 || sec.LeakedAt.IsZero() {
		t.Errorf("the pushed vault secret was not reported as leaked (leaks %+v)", leaks)
	}
}
