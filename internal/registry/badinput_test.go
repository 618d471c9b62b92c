package registry_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/authz"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// ociCode reads the first OCI error code of a response.
func ociCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &e) != nil || len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

type regClient struct {
	t     *testing.T
	base  string
	token string
}

func (c regClient) do(method, path string, hdr map[string]string, body []byte) (*http.Response, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestBadInput sends what a broken or hostile client would: each request
// gets the spec's error code, and no blob becomes visible.
func TestBadInput(t *testing.T) {
	w := newWorld(t)
	o := w.org(t, "acme")
	dev := w.member(t, o, "dev", authz.Developer)
	c := regClient{t: t, base: w.a.URL, token: dev}
	blob := []byte("the real content")
	good := sha(blob)
	start := func() string {
		resp, _ := c.do("POST", "/v2/acme/app/blobs/uploads/", nil, nil)
		if resp.StatusCode != 202 {
			t.Fatalf("start upload = %d", resp.StatusCode)
		}
		return resp.Header.Get("Location")
	}
	bigManifest := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"x":"` + strings.Repeat("a", 5<<20) + `"}}`
	tests := []struct {
		name   string
		method string
		path   func() string
		hdr    map[string]string
		body   []byte
		status int
		code   string
	}{
		{"wrong digest on a monolithic upload", "POST", func() string { return "/v2/acme/app/blobs/uploads/?digest=" + sha([]byte("other")) },
			map[string]string{"Content-Type": "application/octet-stream"}, blob, 400, "DIGEST_INVALID"},
		{"malformed digest", "POST", func() string { return "/v2/acme/app/blobs/uploads/?digest=sha256:xyz" }, nil, blob, 400, "DIGEST_INVALID"},
		{"unsupported algorithm", "GET", func() string { return "/v2/acme/app/blobs/md5:d41d8cd98f00b204e9800998ecf8427e" }, nil, nil, 400, "DIGEST_INVALID"},
		{"chunk out of order", "PATCH", func() string { return start() }, map[string]string{"Content-Range": "5-9"}, []byte("12345"), 416, "RANGE_INVALID"},
		{"chunk length differs from its range", "PATCH", func() string { return start() }, map[string]string{"Content-Range": "0-9"}, []byte("12345"), 400, "SIZE_INVALID"},
		{"finish with the wrong digest", "PUT", func() string { return start() + "?digest=" + sha([]byte("other")) }, nil, blob, 400, "DIGEST_INVALID"},
		{"unknown upload", "PATCH", func() string { return "/v2/acme/app/blobs/uploads/0123456789abcdef0123456789abcdef" }, nil, blob, 404, "BLOB_UPLOAD_UNKNOWN"},
		{"manifest over 4 MiB", "PUT", func() string { return "/v2/acme/app/manifests/big" },
			map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, []byte(bigManifest), 413, "SIZE_INVALID"},
		{"manifest that is not JSON", "PUT", func() string { return "/v2/acme/app/manifests/v1" },
			map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, []byte("{not json"), 400, "MANIFEST_INVALID"},
		{"manifest naming a blob never pushed", "PUT", func() string { return "/v2/acme/app/manifests/v1" },
			map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
			[]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + good + `","size":16},"layers":[]}`),
			400, "MANIFEST_BLOB_UNKNOWN"},
		{"escaped dots in the name", "GET", func() string { return "/v2/acme/%2e%2e/x/tags/list" }, nil, nil, 400, "NAME_INVALID"},
		{"uppercase name", "GET", func() string { return "/v2/acme/App/tags/list" }, nil, nil, 400, "NAME_INVALID"},
		{"name without an org", "GET", func() string { return "/v2/app/tags/list" }, nil, nil, 400, "NAME_INVALID"},
		{"name of an org that does not exist", "POST", func() string { return "/v2/nobody/app/blobs/uploads/" }, nil, nil, 403, "DENIED"},
		{"bad tag", "PUT", func() string { return "/v2/acme/app/manifests/-bad" },
			map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, []byte(`{}`), 400, "MANIFEST_INVALID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := c.do(tt.method, tt.path(), tt.hdr, tt.body)
			if resp.StatusCode != tt.status || ociCode(t, body) != tt.code {
				t.Fatalf("%s = %d %s, want %d %s", tt.name, resp.StatusCode, body, tt.status, tt.code)
			}
		})
	}
	if resp, _ := c.do("HEAD", "/v2/acme/app/blobs/"+good, nil, nil); resp.StatusCode != 404 {
		t.Errorf("a blob became visible after bad uploads: HEAD = %d", resp.StatusCode)
	}
	t.Run("path traversal is redirected, never served", func(t *testing.T) {
		conn, err := net.Dial("tcp", w.host)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /v2/acme/../../api/v1/user HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n", w.host, dev)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 3 || strings.Contains(resp.Header.Get("Location"), "..") {
			t.Fatalf("traversal = %d to %q, want a redirect to the clean path", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("truncated upload keeps only what arrived", func(t *testing.T) {
		loc := start()
		conn, err := net.Dial("tcp", w.host)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Length: 1000\r\n\r\n%s", loc, w.host, dev, blob[:8])
		conn.Close()
		// The client resumes from what the registry reports.
		var resp *http.Response
		for range 50 {
			resp, _ = c.do("GET", loc, nil, nil)
			if resp.Header.Get("Range") == "0-7" {
				break
			}
		}
		if resp.StatusCode != 204 || resp.Header.Get("Range") != "0-7" {
			t.Fatalf("after a cut PATCH: %d Range %q, want 204 0-7", resp.StatusCode, resp.Header.Get("Range"))
		}
		if resp, body := c.do("PUT", loc+"?digest="+good, map[string]string{"Content-Range": "8-15"}, blob[8:]); resp.StatusCode != 201 {
			t.Fatalf("resume = %d %s", resp.StatusCode, body)
		}
	})
}

// TestRestart_UploadSurvivesCrash leaves an upload the way a crash does —
// bytes in storage past what was recorded — restarts Rampart on the same
// data, finishes the upload, and checks that what was pushed before is
// intact.
func TestRestart_UploadSurvivesCrash(t *testing.T) {
	dir := t.TempDir()
	w := newWorld(t, apptest.WithDataDir(dir))
	o := w.org(t, "acme")
	dev := w.member(t, o, "dev", authz.Developer)
	c := regClient{t: t, base: w.a.URL, token: dev}
	first := []byte("pushed before the crash")
	if resp, body := c.do("POST", "/v2/acme/app/blobs/uploads/?digest="+sha(first), nil, first); resp.StatusCode != 201 {
		t.Fatalf("push = %d %s", resp.StatusCode, body)
	}
	resp, _ := c.do("POST", "/v2/acme/app/blobs/uploads/", nil, nil)
	loc := resp.Header.Get("Location")
	content := []byte("0123456789abcdefghij")
	if resp, body := c.do("PATCH", loc, map[string]string{"Content-Range": "0-9"}, content[:10]); resp.StatusCode != 202 {
		t.Fatalf("patch = %d %s", resp.StatusCode, body)
	}
	w.a.Stop(t)
	// The crash: five more bytes reached the disk, the record did not.
	id := loc[strings.LastIndex(loc, "/")+1:]
	f, err := os.OpenFile(filepath.Join(dir, "registry", "uploads", id), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(content[10:15]); err != nil {
		t.Fatal(err)
	}
	f.Close()

	a2 := apptest.Start(t, apptest.WithDataDir(dir))
	c.base = a2.URL
	resp, _ = c.do("GET", loc, nil, nil)
	if resp.StatusCode != 204 || resp.Header.Get("Range") != "0-14" {
		t.Fatalf("upload after restart: %d Range %q, want 204 0-14", resp.StatusCode, resp.Header.Get("Range"))
	}
	if resp, body := c.do("PUT", loc+"?digest="+sha(content), map[string]string{"Content-Range": "15-19"}, content[15:]); resp.StatusCode != 201 {
		t.Fatalf("finish after restart = %d %s", resp.StatusCode, body)
	}
	for _, b := range [][]byte{first, content} {
		resp, body := c.do("GET", "/v2/acme/app/blobs/"+sha(b), nil, nil)
		if resp.StatusCode != 200 || !bytes.Equal(body, b) {
			t.Fatalf("GET %s after restart = %d %q", sha(b), resp.StatusCode, body)
		}
	}
}
