package imagesteps_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/image"
	"github.com/rampartsec/rampart/internal/pipeline"
	"github.com/rampartsec/rampart/internal/pipeline/imagesteps"
	"github.com/rampartsec/rampart/internal/scan"
)

// BenchmarkImageSteps_BuildPush times a pipeline's build-image and
// push-image steps (daemonless build, SBOM scan, provenance, OCI layout
// in the workspace, job token, push of the image and its two referrers to
// Rampart's registry) against its peer, tar + `crane append` v0.22.1
// pushing the same files as one layer to the same registry (no evidence),
// interleaved in each iteration. The context is a small service: a 6 MiB
// binary, 200 static files of 4 KiB, a config file; each iteration
// changes the binary, so both upload it. It reports the ratio
// crane/rampart (above 1: Rampart faster).
func BenchmarkImageSteps_BuildPush(b *testing.B) {
	crane := tool(b, "crane", craneVersion)
	a := apptest.Start(b)
	u, _ := url.Parse(a.URL)
	host := u.Host
	a.Client(b, a.AdminToken(b)).Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "acme"})
	ctx := b.Context()
	dev, err := a.IDs.CreateUser(ctx, identity.NewUser{Username: "dev"})
	if err != nil {
		b.Fatal(err)
	}
	org, err := a.IDs.Org(ctx, "acme")
	if err != nil {
		b.Fatal(err)
	}
	if err := a.IDs.SetMember(ctx, org.ID, dev.ID, authz.Developer); err != nil {
		b.Fatal(err)
	}
	token, _, err := a.IDs.CreateToken(ctx, dev.ID, identity.NewToken{Name: "bench", Scopes: []authz.Scope{authz.ScopeRegistryPull, authz.ScopeRegistryPush}})
	if err != nil {
		b.Fatal(err)
	}
	scanner, err := scan.New(ctx, scan.Config{})
	if err != nil {
		b.Fatal(err)
	}
	steps, err := imagesteps.New(imagesteps.Deps{Registry: a.OCI, Users: a.IDs, PublicURL: a.URL, Logger: slog.New(slog.DiscardHandler),
		Inventory: func(context.Context) (image.Inventory, error) { return scanner, nil }})
	if err != nil {
		b.Fatal(err)
	}
	home := b.TempDir()
	craneRun := func(args ...string) {
		cmd := exec.CommandContext(ctx, crane, args...)
		cmd.Env = append(os.Environ(), "HOME="+home, "DOCKER_CONFIG="+filepath.Join(home, ".docker"))
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("crane %v: %v\n%s", args, err, out)
		}
	}
	craneRun("auth", "login", host, "-u", "dev", "-p", token)

	ws := b.TempDir()
	files := map[string][]byte{"Dockerfile": []byte("FROM scratch\nCOPY app/ /app/\nENTRYPOINT [\"/app/bin/server\"]\n"),
		"app/etc/config.yaml": []byte("listen: :8080\n"), "app/bin/server": random(b, 6<<20)}
	for i := range 200 {
		files[fmt.Sprintf("app/web/static/%03d.css", i)] = random(b, 4<<10)
	}
	for name, data := range files {
		p := filepath.Join(ws, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	stamp := func(i int, who string) {
		f, err := os.OpenFile(filepath.Join(ws, "app", "bin", "server"), os.O_WRONLY, 0)
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(f, "%s %08d", who, i)
		f.Close()
	}
	var rampart, peer time.Duration
	i := 0
	for b.Loop() {
		i++
		stamp(i, "rampart")
		t0 := time.Now()
		run := pipeline.RunRef{RunID: int64(i), Number: int64(i), Repo: "acme/app", Commit: "0123456789abcdef0123456789abcdef01234567",
			Ref: "refs/heads/main", Job: "bench", URL: a.URL + "/orgs/acme/repos/app/pipelines/1", Actor: "dev"}
		for _, st := range []pipeline.ImageStep{
			{Type: pipeline.StepBuildImage, With: map[string]string{"tag": "app:1"}},
			{Type: pipeline.StepPushImage, With: map[string]string{"image": "app:1", "to": fmt.Sprintf("%s/acme/app:%d", host, i)}},
		} {
			st.Workspace, st.Log, st.Run = ws, io.Discard, run
			if err := steps.ImageStep(ctx, st); err != nil {
				b.Fatal(err)
			}
		}
		rampart += time.Since(t0)

		stamp(i, "crane  ")
		t0 = time.Now()
		layer := filepath.Join(b.TempDir(), "layer.tar")
		tar := exec.CommandContext(ctx, "tar", "-C", ws, "-cf", layer, "app")
		if out, err := tar.CombinedOutput(); err != nil {
			b.Fatalf("tar: %v\n%s", err, out)
		}
		craneRun("append", "--insecure", "-f", layer, "-t", fmt.Sprintf("%s/acme/crane:%d", host, i))
		peer += time.Since(t0)
	}
	b.ReportMetric(float64(rampart.Milliseconds())/float64(i), "rampart-ms/op")
	b.ReportMetric(float64(peer.Milliseconds())/float64(i), "crane-ms/op")
	b.ReportMetric(float64(peer)/float64(rampart), "crane/rampart")
}

func random(b *testing.B, n int) []byte {
	p := make([]byte, n)
	if _, err := rand.Read(p); err != nil {
		b.Fatal(err)
	}
	return p
}
