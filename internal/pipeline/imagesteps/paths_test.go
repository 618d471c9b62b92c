package imagesteps

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
)

// workspace is a job workspace with a directory, a file, a link inside
// and a link leading out.
func workspace(t testing.TB) string {
	t.Helper()
	ws := t.TempDir()
	outside := t.TempDir()
	for _, err := range []error{
		os.MkdirAll(filepath.Join(ws, "src", "app"), 0o755),
		os.WriteFile(filepath.Join(ws, "src", "Dockerfile"), []byte("FROM scratch\n"), 0o644),
		os.Symlink("src", filepath.Join(ws, "in")),
		os.Symlink(outside, filepath.Join(ws, "out")),
		os.Symlink("/etc", filepath.Join(ws, "src", "etc")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return ws
}

func TestInside(t *testing.T) {
	ws := workspace(t)
	for _, tt := range []struct {
		rel  string
		want string // "" when refused
	}{
		{".", "."},
		{"src", "src"},
		{"src/Dockerfile", "src/Dockerfile"},
		{"in/Dockerfile", "src/Dockerfile"},
		{"src/../src/app", "src/app"},
		{"../x", ""},
		{"/etc", ""},
		{"out", ""},
		{"src/etc", ""},
		{"src/etc/passwd", ""},
		{"missing", ""},
		{"", ""},
		{"a\x00b", ""},
		{strings.Repeat("a/", 600), ""},
	} {
		t.Run(tt.rel, func(t *testing.T) {
			got, err := inside(ws, tt.rel, "context")
			if tt.want == "" {
				if err == nil || apperr.KindOf(err) != apperr.Invalid {
					t.Fatalf("inside(%q) = %q, %v; want an Invalid error", tt.rel, got, err)
				}
				return
			}
			root, _ := filepath.EvalSymlinks(ws)
			if err != nil || got != filepath.Join(root, tt.want) {
				t.Fatalf("inside(%q) = %q, %v; want %s", tt.rel, got, err, tt.want)
			}
		})
	}
}

func TestCheckTag(t *testing.T) {
	for _, tt := range []struct {
		tag string
		ok  bool
		dir string
	}{
		{"app:1", true, "app_1"},
		{"team/app:v1.2", true, "team_app_v1.2"},
		{"localhost:5000/app:1", true, "localhost_5000_app_1"},
		{"app", false, ""},
		{"localhost:5000/app", false, ""},
		{"app@sha256:" + strings.Repeat("a", 64), false, ""},
		{"../app:1", false, ""},
		{"App:1", false, ""},
		{"", false, ""},
		{"app:" + strings.Repeat("x", 200), false, ""},
	} {
		t.Run(tt.tag, func(t *testing.T) {
			err := checkTag(tt.tag)
			if (err == nil) != tt.ok {
				t.Fatalf("checkTag(%q) = %v, want ok=%v", tt.tag, err, tt.ok)
			}
			if tt.ok && dirName(tt.tag) != tt.dir {
				t.Errorf("dirName(%q) = %q, want %q", tt.tag, dirName(tt.tag), tt.dir)
			}
		})
	}
}

func TestRegistryOf(t *testing.T) {
	for _, tt := range []struct {
		ref, host string
	}{
		{"127.0.0.1:5000/acme/app:1", "127.0.0.1:5000"},
		{"registry.example/acme/app:1", "registry.example"},
		{"localhost/app:1", "localhost"},
		{"acme/app:1", ""},
		{"app:1", ""},
		{"registry.example/", ""},
		{"", ""},
	} {
		t.Run(tt.ref, func(t *testing.T) {
			got, err := registryOf(tt.ref)
			if got != tt.host || (err == nil) != (tt.host != "") {
				t.Fatalf("registryOf(%q) = %q, %v; want %q", tt.ref, got, err, tt.host)
			}
		})
	}
}

// FuzzStepInputs feeds the parsers of step parameters arbitrary text:
// none panics, a path accepted is inside the workspace, a tag accepted
// makes one directory name.
func FuzzStepInputs(f *testing.F) {
	for _, s := range []string{".", "src", "../x", "/etc", "in/Dockerfile", "out", "app:1", "team/app:v1", "localhost:5000/a:b",
		"127.0.0.1:5000/acme/app:1", "a/../../b", "oci-layout:base:1", "oci-layout:base@sha256:abc", "x\x00y", "1700000000", "-1"} {
		f.Add(s)
	}
	ws := workspace(f)
	root, _ := filepath.EvalSymlinks(ws)
	f.Fuzz(func(t *testing.T, s string) {
		if p, err := inside(ws, s, "path"); err == nil {
			if r, err := filepath.Rel(root, p); err != nil || !(r == "." || filepath.IsLocal(r)) {
				t.Fatalf("inside(%q) = %q, outside %s", s, p, root)
			}
		}
		if checkTag(s) == nil {
			d := dirName(s)
			if d == "" || d == "." || d == ".." || strings.ContainsAny(d, "/\x00") {
				t.Fatalf("tag %q makes the directory name %q", s, d)
			}
		}
		if h, err := registryOf(s); err == nil && (h == "" || strings.Contains(h, "/")) {
			t.Fatalf("registryOf(%q) = %q", s, h)
		}
		dir, sel := splitLayoutRef(s)
		if dir+sel != s {
			t.Fatalf("splitLayoutRef(%q) = %q + %q", s, dir, sel)
		}
		if tm, err := sourceDateEpoch(map[string]string{"SOURCE_DATE_EPOCH": s}); err == nil && tm.Year() > 9999 {
			t.Fatalf("SOURCE_DATE_EPOCH %q = %v", s, tm)
		}
	})
}

func TestRealDir(t *testing.T) {
	ws := workspace(t)
	if p, err := realDir(ws, ".rampart/images", true); err != nil || p != filepath.Join(ws, ".rampart", "images") {
		t.Fatalf("realDir creating = %q, %v", p, err)
	}
	if err := os.WriteFile(filepath.Join(ws, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"in/app", "out/x", "src/etc", "file/x", "missing"} {
		if p, err := realDir(ws, rel, rel != "missing"); err == nil {
			t.Errorf("realDir(%q) = %q, want an error", rel, p)
		}
	}
	if _, err := os.Stat(filepath.Join(ws, "out", "x")); err == nil {
		t.Error("realDir created a directory through a symbolic link")
	}
}

func TestTokenTTL(t *testing.T) {
	for _, tt := range []struct {
		name     string
		deadline time.Duration // 0: none
		want     time.Duration
	}{
		{"no deadline: the registry's longest", 0, time.Hour},
		{"the job's deadline", 10 * time.Minute, 10 * time.Minute},
		{"past the registry's longest", 3 * time.Hour, time.Hour},
		{"at least a second", time.Millisecond, time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			if got := tokenTTL(ctx); got < tt.want-time.Second || got > tt.want {
				t.Fatalf("tokenTTL = %v, want %v", got, tt.want)
			}
		})
	}
}
