package registry_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/apptest"
)

// benchBlobBytes is the size of the blob the blob benchmarks push and pull.
const benchBlobBytes = 64 << 20

// blobBench is a running Rampart with an org to push to and an admin token.
type blobBench struct {
	base, token string
	blob        []byte
}

func newBlobBench(b *testing.B) *blobBench {
	b.Helper()
	a := apptest.Start(b)
	admin, err := a.IDs.UserByName(b.Context(), "admin")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := a.IDs.CreateOrg(b.Context(), admin.ID, "bench", ""); err != nil {
		b.Fatal(err)
	}
	blob := make([]byte, benchBlobBytes)
	_, _ = rand.Read(blob)
	return &blobBench{base: strings.Replace(a.URL, "localhost", "127.0.0.1", 1), token: a.AdminToken(b), blob: blob}
}

func (bb *blobBench) do(b *testing.B, method, path string, body io.Reader, want int) *http.Response {
	b.Helper()
	req, err := http.NewRequestWithContext(b.Context(), method, bb.base+path, body)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+bb.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	if resp.StatusCode != want {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		b.Fatalf("%s %s = %d, want %d: %s", method, path, resp.StatusCode, want, msg)
	}
	return resp
}

// streamed hides the length of its reader, so the client sends the body
// chunked as crane and docker do for a PATCH.
type streamed struct{ io.Reader }

// push uploads bb.blob as crane does: POST, one streamed PATCH, PUT.
func (bb *blobBench) push(b *testing.B, repo, digest string) {
	resp := bb.do(b, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, http.StatusAccepted)
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	resp = bb.do(b, http.MethodPatch, loc, streamed{bytes.NewReader(bb.blob)}, http.StatusAccepted)
	resp.Body.Close()
	resp = bb.do(b, http.MethodPut, resp.Header.Get("Location")+"?digest="+digest, nil, http.StatusCreated)
	resp.Body.Close()
}

// BenchmarkBlobPush measures the server side of a blob upload over
// loopback: receiving, hashing and storing 64 MiB through the filesystem
// driver, with token auth. Run it with -cpuprofile to see where the time
// goes (the profile holds the client too: net/http's chunked writer).
func BenchmarkBlobPush(b *testing.B) {
	bb := newBlobBench(b)
	b.SetBytes(benchBlobBytes)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		// A new blob each time: the registry must receive every byte.
		b.StopTimer()
		copy(bb.blob, fmt.Sprintf("%016x", i))
		sum := sha256.Sum256(bb.blob)
		b.StartTimer()
		bb.push(b, fmt.Sprintf("bench/push%d", i), "sha256:"+hex.EncodeToString(sum[:]))
	}
}

// BenchmarkBlobPull measures serving a 64 MiB blob to a client that reads
// it to the end.
func BenchmarkBlobPull(b *testing.B) {
	bb := newBlobBench(b)
	sum := sha256.Sum256(bb.blob)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	bb.push(b, "bench/pull", digest)
	b.SetBytes(benchBlobBytes)
	b.ReportAllocs()
	for b.Loop() {
		resp := bb.do(b, http.MethodGet, "/v2/bench/pull/blobs/"+digest, nil, http.StatusOK)
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != benchBlobBytes {
			b.Fatalf("pulled %d bytes (%v), want %d", n, err, benchBlobBytes)
		}
	}
}
