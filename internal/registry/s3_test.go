package registry_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/registry"
)

// versitygwVersion is the S3 server the S3 storage test runs against
// (github.com/versity/versitygw, a real S3 gateway over a directory);
// .ci/run builds it into .cache/tools.
const versitygwVersion = "v1.8.0"

// startS3 runs versitygw's posix backend on a fresh directory with one
// bucket and returns its endpoint and the directory the bucket lives in.
func startS3(t *testing.T, access, secret, bucket string) (endpoint, bucketDir string) {
	t.Helper()
	bin := tool(t, "versitygw", versitygwVersion)
	root := t.TempDir()
	bucketDir = filepath.Join(root, bucket)
	if err := os.Mkdir(bucketDir, 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var out bytes.Buffer
	cmd := exec.Command(bin, "--access", access, "--secret", secret, "--port", addr, "posix", root)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(15 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not listen on %s: %s", addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "http://" + addr, bucketDir
}

// TestS3Storage runs the registry on the S3 driver against a real S3
// server: an image pushed with crane lands as objects in the bucket (not
// under the data directory), is scanned, and pulls back with the same
// digest and content — also after a restart of Rampart on the same
// bucket.
func TestS3Storage(t *testing.T) {
	crane := tool(t, "crane", craneVersion)
	const access, secret = "rampart-test", "rampart-test-secret-key"
	endpoint, bucketDir := startS3(t, access, secret, "images")
	t.Setenv("AWS_ACCESS_KEY_ID", access)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	dataDir := t.TempDir()
	storage := fmt.Sprintf("s3://images/registry?region=us-east-1&endpoint=%s&secure=false", endpoint)
	opts := []apptest.Option{apptest.WithDataDir(dataDir), apptest.WithConfig(func(c *config.Config) { c.Registry.Storage = storage })}
	w := newWorld(t, opts...)
	o := w.org(t, "acme")
	dev := w.member(t, o, "dev", authz.Developer)
	h := newHome(t)
	mustRun(t, h.env(), crane, "auth", "login", w.host, "-u", "dev", "-p", dev)
	ref := w.host + "/acme/s3app:v1"
	mustRun(t, h.env(), crane, "append", "--insecure", "-f", layerTar(t, map[string]string{"app/hello.txt": "stored in S3\n"}), "-t", ref)
	digest := strings.TrimSpace(mustRun(t, h.env(), crane, "digest", "--insecure", ref))
	if m := waitScanned(t, w, "acme/s3app", digest); m.ScanStatus != registry.ScanPassed {
		t.Fatalf("scan = %s (%s), want passed", m.ScanStatus, m.ScanReason)
	}

	// The blobs are objects of the bucket, under the configured prefix;
	// nothing of them is in the data directory.
	var objects int
	_ = filepath.Walk(filepath.Join(bucketDir, "registry"), func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			objects++
		}
		return nil
	})
	if objects < 2 {
		t.Errorf("%d objects under the bucket's registry/ prefix, want the layer and the config at least", objects)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "registry")); err == nil {
		t.Errorf("blobs were written to the data directory too")
	}

	pull := func(t *testing.T, host string) {
		t.Helper()
		out := mustRun(t, h.env(), crane, "export", "--insecure", host+"/acme/s3app@"+digest, "-")
		if !strings.Contains(out, "stored in S3") {
			t.Errorf("pulled image does not hold the pushed file")
		}
	}
	pull(t, w.host)

	// A new Rampart on the same data directory (store, keys) and bucket
	// serves the same image.
	w.a.Stop(t)
	w2 := newWorld(t, opts...)
	mustRun(t, h.env(), crane, "auth", "login", w2.host, "-u", "dev", "-p", dev)
	pull(t, w2.host)
}
