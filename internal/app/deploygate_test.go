package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/rampartsec/rampart/internal/app"
	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/deploy"
	"github.com/rampartsec/rampart/internal/deploy/deploytest"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/image"
)

// TestDeployPullAuth: the Kubernetes target's pull secret holds the
// deployer's name and a pull-only token for the image's one repository,
// which a registry client sending Basic credentials (as the kubelet
// does) pulls with and cannot push with; a deployer who may not pull,
// a context without a deployer and other registries get nothing.
func TestDeployPullAuth(t *testing.T) {
	a := apptest.Start(t)
	ctx := t.Context()
	admin := a.Client(t, a.AdminToken(t))
	devToken := a.CreateUser(t, admin, "dev")
	a.CreateUser(t, admin, "stranger")
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", map[string]string{"name": "acme"})
	admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/acme/members/dev", map[string]string{"role": "developer"})
	host := strings.TrimPrefix(a.URL, "http://")
	// The image stays quarantined until scanned; quarantine is not what
	// this test is about.
	admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/acme/registry/repositories/web", map[string]any{"quarantine": false})
	pushed, err := image.Push(ctx, deploytest.Image(t, "v1"), host+"/acme/web:v1", nil,
		image.PushOptions{Auth: &authn.Basic{Username: "dev", Password: devToken}, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	userID := func(n string) int64 {
		u, err := a.IDs.UserByName(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		return u.ID
	}
	as := func(user string) context.Context {
		return deploy.WithPuller(ctx, deploy.Puller{Scope: deploy.Scope{Org: "acme", Project: "web"}, UserID: userID(user)})
	}

	user, token, ok := a.DeployPullAuth(as("dev"), host+"/acme/web")
	if !ok || user != "dev" || token == "" || strings.HasPrefix(string(token), "rpt_") {
		t.Fatalf("pull auth for dev = %q, token %t, ok %v; want dev with a registry token", user, token != "", ok)
	}
	basic := remote.WithAuth(&authn.Basic{Username: user, Password: string(token)})
	ref, err := name.NewDigest(pushed.Image.String(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref, basic, remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("pull with the pull secret: %v", err)
	}
	tag, err := name.NewTag(host+"/acme/web:pushed-by-secret", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img, basic, remote.WithContext(ctx)); err == nil {
		t.Fatal("the pull secret pushed")
	}

	for _, tt := range []struct {
		name  string
		ctx   context.Context
		image string
	}{
		{"a deployer who may not pull", as("stranger"), host + "/acme/web"},
		{"no deployer", ctx, host + "/acme/web"},
		{"another registry", as("dev"), "registry.example/acme/web"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if user, _, ok := a.DeployPullAuth(tt.ctx, tt.image); ok {
				t.Fatalf("pull auth given (user %q)", user)
			}
		})
	}
}

// FuzzLocalRepository: a provenance source URI is ORG/NAME of this
// Rampart only when it is under the public URL, and never panics.
func FuzzLocalRepository(f *testing.F) {
	const base = "https://rampart.example:8443"
	for _, s := range []string{base + "/acme/web.git", base + "/acme/web", base + "/acme/", base + "//web", base + "/a/b/c",
		"https://github.com/acme/web.git", base + "x/acme/web", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		got, ok := app.LocalRepository(base, uri)
		if !ok {
			return
		}
		org, rest, found := strings.Cut(got, "/")
		if !found || org == "" || rest == "" || strings.Contains(rest, "/") || !strings.HasPrefix(uri, base+"/"+got) {
			t.Fatalf("LocalRepository(%q) = %q", uri, got)
		}
	})
}
