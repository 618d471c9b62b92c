package container_test

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/rampartsec/rampart/internal/container"
	"github.com/rampartsec/rampart/internal/testenv"
)

func newRuntime(t *testing.T) *container.Runtime {
	t.Helper()
	testenv.LookPath(t, "runc")
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root (runc needs it to create containers)")
	}
	r, err := container.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func run(t *testing.T, r *container.Runtime, ctx context.Context, spec container.Spec) (container.Result, string) {
	t.Helper()
	var out bytes.Buffer
	spec.Stdout, spec.Stderr = &out, &out
	if spec.ID == "" {
		spec.ID = strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	}
	res, err := r.Run(ctx, spec)
	if err != nil {
		t.Fatalf("Run: %v (output %q)", err, out.String())
	}
	return res, out.String()
}

func TestRun_HostRoot(t *testing.T) {
	r := newRuntime(t)
	ws := t.TempDir()
	if err := os.Chmod(ws, 0o777); err != nil {
		t.Fatal(err)
	}
	secretDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(secretDir, "key"), []byte("topsecret"), 0o644); err != nil {
		t.Fatal(err)
	}
	ws2 := t.TempDir()
	tests := []struct {
		name     string
		spec     container.Spec
		wantExit int
		want     string // substring of the output
	}{
		{"runs as nobody", container.Spec{Args: []string{"id", "-u"}}, 0, "65534\n"},
		{"root is read-only", container.Spec{Args: []string{"sh", "-c", "touch /usr/x 2>&1; touch /etc/x 2>&1"}}, 1, "Read-only file system"},
		{"host tools usable", container.Spec{Args: []string{"git", "--version"}}, 0, "git version"},
		{"no network by default", container.Spec{Args: []string{"sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '"}}, 0, "lo\n"},
		{"workspace writable", container.Spec{Args: []string{"sh", "-c", "echo hi > /workspace/f && cat /workspace/f"},
			Mounts: []container.Mount{{Source: ws, Destination: "/workspace"}}, Dir: "/workspace"}, 0, "hi\n"},
		{"private tmp", container.Spec{Args: []string{"sh", "-c", "ls -A /tmp | wc -l"}}, 0, "0\n"},
		{"masked path", container.Spec{Args: []string{"sh", "-c", "cat " + secretDir + "/key; ls -A " + secretDir + " | wc -l"},
			Mounts: []container.Mount{{Source: ws2, Destination: "/w"}}, Masked: []string{secretDir}}, 0, "0\n"},
		{"exit code kept", container.Spec{Args: []string{"sh", "-c", "exit 7"}}, 7, ""},
		{"no new privileges", container.Spec{Args: []string{"sh", "-c", "grep NoNewPrivs /proc/self/status"}}, 0, "NoNewPrivs:\t1"},
		{"no capabilities", container.Spec{Args: []string{"sh", "-c", "grep CapEff /proc/self/status"}}, 0, "CapEff:\t0000000000000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, out := run(t, r, t.Context(), tt.spec)
			if res.ExitCode != tt.wantExit || !strings.Contains(out, tt.want) {
				t.Errorf("exit %d, output %q; want exit %d and %q", res.ExitCode, out, tt.wantExit, tt.want)
			}
			if strings.Contains(out, "topsecret") {
				t.Errorf("masked file readable: %q", out)
			}
		})
	}
	t.Run("network when asked", func(t *testing.T) {
		_, out := run(t, r, t.Context(), container.Spec{Network: true, Args: []string{"sh", "-c", "tail -n +3 /proc/net/dev | wc -l"}})
		if strings.TrimSpace(out) == "1" {
			t.Errorf("Network: true sees only loopback: %q", out)
		}
	})
}

func TestRun_Limits(t *testing.T) {
	r := newRuntime(t)
	t.Run("timeout kills", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		res, _ := run(t, r, ctx, container.Spec{Args: []string{"sh", "-c", "sleep 60 & sleep 60"}})
		if !res.Killed || res.ExitCode == 0 || time.Since(start) > 15*time.Second {
			t.Errorf("result %+v after %v; want killed soon after the timeout", res, time.Since(start))
		}
	})
	t.Run("fork bomb bounded by pids", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		res, out := run(t, r, ctx, container.Spec{Limits: container.Limits{Pids: 32},
			Args: []string{"sh", "-c", "b() { b | b & }; b; sleep 1; ps -e 2>/dev/null | wc -l; echo survived"}})
		// The bomb either ends with the shell (fork fails) or is killed at
		// the deadline; either way the host was never flooded, and the
		// result says the limit was hit.
		if !res.PidsLimited {
			t.Errorf("result %+v does not report the process limit (output %q)", res, out)
		}
	})
	t.Run("memory limit", func(t *testing.T) {
		res, out := run(t, r, t.Context(), container.Spec{Limits: container.Limits{Memory: 64 << 20},
			Args: []string{"dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"}})
		if res.ExitCode == 0 || !res.OOM {
			t.Errorf("256 MiB buffer allowed under a 64 MiB limit, or not reported: %+v %q", res, out)
		}
	})
	t.Run("disk filler meets ENOSPC", func(t *testing.T) {
		res, out := run(t, r, t.Context(), container.Spec{Limits: container.Limits{TmpSize: 8 << 20},
			Args: []string{"dd", "if=/dev/zero", "of=/tmp/fill", "bs=1M", "count=100"}})
		if res.ExitCode == 0 || !strings.Contains(out, "No space left") {
			t.Errorf("filled past the limit: %+v %q", res, out)
		}
	})
	t.Run("scratch workspace bounded", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "ws")
		unmount, err := container.MountScratch(dir, 4<<20, container.NobodyUID, container.NobodyUID)
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := unmount(); err != nil {
				t.Error(err)
			}
		}()
		res, out := run(t, r, t.Context(), container.Spec{Mounts: []container.Mount{{Source: dir, Destination: "/workspace"}},
			Args: []string{"dd", "if=/dev/zero", "of=/workspace/fill", "bs=1M", "count=100"}})
		if res.ExitCode == 0 || !strings.Contains(out, "No space left") {
			t.Errorf("filled past the limit: %+v %q", res, out)
		}
	})
}

func TestRun_BadSpec(t *testing.T) {
	r := newRuntime(t)
	for _, spec := range []container.Spec{
		{ID: "../x", Args: []string{"true"}},
		{ID: "ok", Args: nil},
		{ID: "ok2", Args: []string{"true"}, Dir: "relative"},
		{ID: "ok3", Args: []string{"true"}, Mounts: []container.Mount{{Source: "rel", Destination: "/x"}}},
	} {
		if _, err := r.Run(t.Context(), spec); err == nil {
			t.Errorf("Run(%+v) accepted", spec)
		}
	}
	res, err := r.Run(t.Context(), container.Spec{ID: "nocmd", Args: []string{"/no/such/binary"}})
	if err == nil && res.ExitCode == 0 {
		t.Errorf("missing binary ran: %+v", res)
	}
}

// tinyImage builds an image from host files: dash and the C library.
func tinyImage(t *testing.T) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(host, name string) {
		data, err := os.ReadFile(host)
		if err != nil {
			testenv.Missing(t, host+" (to build a test image)")
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	add("/bin/dash", "bin/sh")
	add("/lib/x86_64-linux-gnu/libc.so.6", "lib/x86_64-linux-gnu/libc.so.6")
	add("/lib64/ld-linux-x86-64.so.2", "lib64/ld-linux-x86-64.so.2")
	tw.WriteHeader(&tar.Header{Name: "etc/motd", Mode: 0o644, Size: 6, Typeflag: tar.TypeReg})
	tw.Write([]byte("image\n"))
	tw.Close()
	data := buf.Bytes()
	l, err := tarball.LayerFromReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestRun_ImageFromLayout(t *testing.T) {
	r := newRuntime(t)
	dir := t.TempDir()
	lp, err := layout.Write(filepath.Join(dir, "layout"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(tinyImage(t)); err != nil {
		t.Fatal(err)
	}
	img, err := container.ImageFromLayout(filepath.Join(dir, "layout"), "")
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "rootfs")
	if err := container.Unpack(img, root); err != nil {
		t.Fatal(err)
	}
	_, out := run(t, r, t.Context(), container.Spec{RootFS: root, ReadOnlyRoot: true,
		Args: []string{"/bin/sh", "-c", "read x < /etc/motd; echo $x; test -e /usr/bin/git || echo no-host-git"}})
	if !strings.Contains(out, "no-host-git") {
		t.Errorf("container sees the host's root: %q", out)
	}
}

func layerImage(t *testing.T, entries []tar.Header) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		body := []byte("x")
		if h.Typeflag == tar.TypeReg {
			h.Size = 1
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(body)
		}
	}
	tw.Close()
	l, err := tarball.LayerFromReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestUnpack_Hostile(t *testing.T) {
	outside := t.TempDir()
	tests := []struct {
		name    string
		entries []tar.Header
	}{
		{"write through a symlink", []tar.Header{
			{Name: "esc", Typeflag: tar.TypeSymlink, Linkname: outside},
			{Name: "esc/pwned", Typeflag: tar.TypeReg, Mode: 0o644}}},
		{"hard link through a symlink", []tar.Header{
			{Name: "esc", Typeflag: tar.TypeSymlink, Linkname: outside},
			{Name: "h", Typeflag: tar.TypeLink, Linkname: "esc/pwned"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			// Refused, or the entry dropped: never written outside.
			err := container.Unpack(layerImage(t, tt.entries), root)
			if _, serr := os.Stat(filepath.Join(outside, "pwned")); serr == nil {
				t.Errorf("a file was written outside the root (Unpack: %v)", err)
			}
		})
	}
	t.Run("dot-dot stays inside", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "root")
		err := container.Unpack(layerImage(t, []tar.Header{{Name: "../../pwned", Typeflag: tar.TypeReg, Mode: 0o644}}), root)
		if _, serr := os.Stat(filepath.Join(filepath.Dir(root), "pwned")); serr == nil {
			t.Errorf("a file was written outside the root (err %v)", err)
		}
	})
}
