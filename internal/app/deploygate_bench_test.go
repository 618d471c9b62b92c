package app_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/partial"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/deploy"
	"github.com/rampartsec/rampart/internal/deploy/deploytest"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/image"
)

// BenchmarkPreDeployGate measures what gathering an image's evidence
// from the registry adds to a pre-deploy decision: the same release
// decided for an image of another registry (policy only: reference and
// digest) and for a signed image of Rampart's registry with an SBOM and
// a provenance attestation (scan, signature, referrers, attestation
// read and its signature verified, branch protection looked up).
// Compare the two in one run: go test ./internal/app -run '^$' -bench PreDeployGate -count 5
func BenchmarkPreDeployGate(b *testing.B) {
	a := apptest.Start(b)
	ctx := b.Context()
	admin := a.Client(b, a.AdminToken(b))
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", map[string]string{"name": "acme"})
	admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs/acme/repos", map[string]string{"name": "web"})
	admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/acme/repos/web/protections", map[string]any{"pattern": "main"})
	host := strings.TrimPrefix(a.URL, "http://")
	img := deploytest.Image(b, "v1")
	desc, err := partial.Descriptor(img)
	if err != nil {
		b.Fatal(err)
	}
	st := image.Statement{Type: image.StatementType, PredicateType: image.PredicateSLSA,
		Subject: []image.StatementTarget{{Name: "acme/web", Digest: map[string]string{"sha256": desc.Digest.Hex}}}}
	st.Predicate.RunDetails.Builder.ID = image.DefaultBuilderID
	st.Predicate.BuildDefinition.ExternalParameters.Source = image.Source{Repository: a.URL + "/acme/web.git", Ref: "refs/heads/main", Commit: strings.Repeat("a", 40)}
	prov := mustJSONBytes(b, st)
	pushed, err := image.Push(ctx, img, host+"/acme/web:v1", &image.Evidence{Subject: *desc, SBOM: []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6"}`), Provenance: prov},
		image.PushOptions{Auth: &authn.Basic{Username: "admin", Password: a.AdminToken(b)}, Insecure: true})
	if err != nil {
		b.Fatal(err)
	}
	for _, d := range []string{desc.Digest.String(), pushed.Referrers[1].DigestStr()} {
		admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs/acme/registry/repositories/web/signatures", map[string]string{"digest": d})
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		v, err := a.OCI.VerifyImage(ctx, "acme/web", desc.Digest.String())
		if err != nil {
			b.Fatal(err)
		}
		if v.ScanStatus != "pending" {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("the image was not scanned in a minute")
		}
	}
	org, err := a.IDs.Org(ctx, "acme")
	if err != nil {
		b.Fatal(err)
	}
	input := func(repository string) deploy.GateInput {
		ref := repository + "@" + desc.Digest.String()
		return deploy.GateInput{OrgID: org.ID, Subject: "release:acme/web#1", Environment: "production", Repository: "acme/web",
			Document: map[string]any{"release": map[string]any{"name": "acme/web", "version": "1"}, "environment": map[string]any{"name": "production"},
				"images": []any{map[string]any{"reference": ref, "repository": repository, "digest": desc.Digest.String()}}}}
	}
	for _, bc := range []struct {
		name string
		repo string
	}{
		{"other-registry", "registry.example/acme/web"},
		{"rampart-registry", host + "/acme/web"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			in := input(bc.repo)
			for b.Loop() {
				d, err := a.PreDeployDecide(ctx, in)
				if err != nil {
					b.Fatal(err)
				}
				if d.Allow != (bc.name == "rampart-registry") {
					b.Fatalf("decision %+v", d)
				}
			}
		})
	}
}

func mustJSONBytes(b *testing.B, v any) []byte {
	b.Helper()
	out, err := json.Marshal(v)
	if err != nil {
		b.Fatal(err)
	}
	return out
}
