package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/httpapi"
)

func TestSmoke_OrgLifecycle(t *testing.T) {
	a := apptest.Start(t)
	admin := a.Client(t, a.AdminToken(t))
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "acme"})
	var o httpapi.Org
	admin.Must(http.StatusOK, "GET", httpapi.Prefix+"/orgs/acme", nil).Decode(t, &o)
	if o.Role != "owner" {
		t.Fatalf("role = %q", o.Role)
	}
}
