package registry_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/registry"
)

// blobFiles lists the blob files the filesystem driver holds.
func blobFiles(t *testing.T, w *world) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	root := filepath.Join(w.a.DataDir, "registry", "blobs")
	_ = filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			out[filepath.Base(filepath.Dir(filepath.Dir(p)))+":"+fi.Name()] = true
		}
		return nil
	})
	return out
}

// TestHygiene pushes tags, then checks immutability, retention (keep the
// last N, keep signed), garbage collection of what retention freed, and
// storage quotas.
func TestHygiene(t *testing.T) {
	crane := tool(t, "crane", craneVersion)
	clock := apptest.NewClock(time.Now())
	w := newWorld(t, apptest.WithClock(clock.Now))
	o := w.org(t, "acme")
	dev := w.member(t, o, "dev", authz.Developer)
	h := newHome(t)
	mustRun(t, h.env(), crane, "auth", "login", w.host, "-u", "dev", "-p", dev)
	push := func(tag, content string) string {
		t.Helper()
		ref := w.host + "/acme/svc:" + tag
		mustRun(t, h.env(), crane, "append", "--insecure", "-f", layerTar(t, map[string]string{"app/version": content}), "-t", ref)
		d := strings.TrimSpace(mustRun(t, h.env(), crane, "digest", "--insecure", ref))
		waitScanned(t, w, "acme/svc", d)
		clock.Advance(time.Minute) // tags get distinct push times
		return d
	}
	d1 := push("v1", "one")
	d2 := push("v2", "two")
	d3 := push("v3", "three")
	d4 := push("v4", "four")

	t.Run("immutable tags refuse a move", func(t *testing.T) {
		w.configure(t, "acme/svc", registry.RepositorySettings{ImmutableTags: ptr(true)})
		defer w.configure(t, "acme/svc", registry.RepositorySettings{ImmutableTags: ptr(false)})
		out, err := run(t, h.env(), crane, "append", "--insecure", "-f", layerTar(t, map[string]string{"app/version": "moved"}), "-t", w.host+"/acme/svc:v4")
		if err == nil || !strings.Contains(out, "immutable") {
			t.Fatalf("moving an immutable tag: err %v, output %s", err, out)
		}
		if got := strings.TrimSpace(mustRun(t, h.env(), crane, "digest", "--insecure", w.host+"/acme/svc:v4")); got != d4 {
			t.Fatalf("v4 moved to %s", got)
		}
	})

	// v1 is signed and kept; of the rest, the newest two stay.
	w.a.Client(t, dev).Must(201, "POST", "/api/v1/orgs/acme/registry/repositories/svc/signatures", registry.SignRequest{Digest: d1})
	w.configure(t, "acme/svc", registry.RepositorySettings{Retention: &registry.Retention{KeepLast: 2, KeepSigned: true}})
	before := blobFiles(t, w)
	var res registry.RetentionResult
	w.a.Client(t, dev).Must(403, "POST", "/api/v1/orgs/acme/registry/repositories/svc/retention", nil)
	w.a.Client(t, w.admin).Must(200, "POST", "/api/v1/orgs/acme/registry/repositories/svc/retention", nil).Decode(t, &res)
	if strings.Join(res.Tags, ",") != "v2" {
		t.Fatalf("retention removed tags %v, want only v2 (v1 signed, v3 and v4 newest)", res.Tags)
	}
	if len(res.Manifests) == 0 || res.Manifests[0] != d2 && !contains(res.Manifests, d2) {
		t.Fatalf("retention removed manifests %v, want %s among them", res.Manifests, d2)
	}
	for _, tag := range []string{"v1", "v3", "v4"} {
		mustRun(t, h.env(), crane, "manifest", "--insecure", w.host+"/acme/svc:"+tag)
	}
	_ = d3

	// Garbage collection waits out the grace period, then removes v2's
	// layer and config but nothing another image needs.
	var gc registry.GCResult
	w.a.Client(t, w.admin).Must(200, "POST", "/api/v1/registry/gc", nil).Decode(t, &gc)
	if gc.Blobs != 0 {
		t.Fatalf("gc within the grace period removed %d blobs", gc.Blobs)
	}
	clock.Advance(2 * time.Hour)
	w.a.Client(t, w.admin).Must(200, "POST", "/api/v1/registry/gc", nil).Decode(t, &gc)
	if gc.Blobs < 2 {
		t.Fatalf("gc removed %+v, want v2's layer and config", gc)
	}
	after := blobFiles(t, w)
	if len(after) != len(before)-gc.Blobs {
		t.Fatalf("blob files %d → %d, gc says %d removed", len(before), len(after), gc.Blobs)
	}
	for _, tag := range []string{"v1", "v3", "v4"} {
		mustRun(t, h.env(), crane, "pull", "--insecure", w.host+"/acme/svc:"+tag, filepath.Join(t.TempDir(), "p.tar"))
	}

	t.Run("quota", func(t *testing.T) {
		var q registry.Quota
		w.a.Client(t, w.admin).Must(200, "PUT", "/api/v1/orgs/acme/registry/quota", registry.QuotaRequest{MaxBytes: 1}).Decode(t, &q)
		if q.UsedBytes == 0 {
			t.Fatalf("quota use = %+v", q)
		}
		out, err := run(t, h.env(), crane, "append", "--insecure", "-f", layerTar(t, map[string]string{"big": strings.Repeat("x", 4096)}), "-t", w.host+"/acme/svc:big")
		if err == nil || !strings.Contains(out, "quota") {
			t.Fatalf("push over quota: err %v, output %s", err, out)
		}
		w.a.Client(t, w.admin).Must(200, "PUT", "/api/v1/orgs/acme/registry/quota", registry.QuotaRequest{MaxBytes: 0})
		mustRun(t, h.env(), crane, "append", "--insecure", "-f", layerTar(t, map[string]string{"big": strings.Repeat("x", 4096)}), "-t", w.host+"/acme/svc:big")
	})

	t.Run("retention by age keeps signed and recent tags", func(t *testing.T) {
		clock.Advance(3 * 24 * time.Hour)
		push("fresh", "fresh")
		w.configure(t, "acme/svc", registry.RepositorySettings{Retention: &registry.Retention{MaxAgeDays: 2, KeepSigned: true}})
		var res registry.RetentionResult
		w.a.Client(t, w.admin).Must(200, "POST", "/api/v1/orgs/acme/registry/repositories/svc/retention", nil).Decode(t, &res)
		if !sameSet(res.Tags, []string{"big", "v3", "v4"}) {
			t.Fatalf("retention by age removed tags %v, want big, v3 and v4 (v1 signed, fresh recent)", res.Tags)
		}
		for _, tag := range []string{"v1", "fresh"} {
			mustRun(t, h.env(), crane, "manifest", "--insecure", w.host+"/acme/svc:"+tag)
		}
		if out, err := run(t, h.env(), crane, "manifest", "--insecure", w.host+"/acme/svc:v3"); err == nil {
			t.Fatalf("v3 survived retention by age: %s", out)
		}
	})
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range b {
		if !contains(a, x) {
			return false
		}
	}
	return true
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestPullThroughCache serves an image of a second, upstream registry
// (another Rampart), and keeps serving it once the upstream is gone.
func TestPullThroughCache(t *testing.T) {
	crane := tool(t, "crane", craneVersion)
	up := newWorld(t)
	uo := up.org(t, "up")
	upDev := up.member(t, uo, "pusher", authz.Developer)
	uh := newHome(t)
	mustRun(t, uh.env(), crane, "auth", "login", up.host, "-u", "pusher", "-p", upDev)
	mustRun(t, uh.env(), crane, "append", "--insecure", "-f", layerTar(t, map[string]string{"etc/motd": "upstream\n"}), "-t", up.host+"/up/base:1.0")
	d := strings.TrimSpace(mustRun(t, uh.env(), crane, "digest", "--insecure", up.host+"/up/base:1.0"))
	waitScanned(t, up, "up/base", d)
	up.configure(t, "up/base", registry.RepositorySettings{Public: ptr(true)})

	w := newWorld(t)
	o := w.org(t, "acme")
	dev := w.member(t, o, "dev", authz.Developer)
	w.configure(t, "acme/mirror/base", registry.RepositorySettings{Upstream: ptr("http://" + up.host + "/up/base")})
	h := newHome(t)
	mustRun(t, h.env(), crane, "auth", "login", w.host, "-u", "dev", "-p", dev)
	mirror := w.host + "/acme/mirror/base:1.0"
	if got := strings.TrimSpace(mustRun(t, h.env(), crane, "digest", "--insecure", mirror)); got != d {
		t.Fatalf("mirror digest %s, upstream %s", got, d)
	}
	waitScanned(t, w, "acme/mirror/base", d)
	mustRun(t, h.env(), crane, "pull", "--insecure", mirror, filepath.Join(t.TempDir(), "m.tar"))
	if out, err := run(t, h.env(), crane, "append", "--insecure", "-f", layerTar(t, map[string]string{"x": "y"}), "-t", w.host+"/acme/mirror/base:mine"); err == nil {
		t.Fatalf("pushed into a pull-through cache: %s", out)
	}
	up.a.Stop(t)
	mustRun(t, h.env(), crane, "pull", "--insecure", mirror, filepath.Join(t.TempDir(), "m2.tar"))
}
