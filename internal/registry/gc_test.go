package registry_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/registry"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// send is one registry request that reports failures as errors, for use
// from several goroutines.
func send(base, token, method, path string, hdr map[string]string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// pushImage pushes config and layer (skipping a blob the repository
// already has, as clients do) and a manifest tagged tag.
func pushImage(base, token, repo, tag string, config, layer []byte) (string, error) {
	for _, b := range [][]byte{layer, config} {
		st, _, err := send(base, token, "HEAD", "/v2/"+repo+"/blobs/"+sha(b), nil, nil)
		if err != nil {
			return "", err
		}
		if st == 200 {
			continue
		}
		st, body, err := send(base, token, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+sha(b), nil, b)
		if err != nil {
			return "", err
		}
		if st != 201 {
			return "", fmt.Errorf("push blob = %d %s", st, body)
		}
	}
	m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`, sha(config), len(config), sha(layer), len(layer)))
	st, body, err := send(base, token, "PUT", "/v2/"+repo+"/manifests/"+tag, map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, m)
	if err != nil {
		return "", err
	}
	if st != 201 {
		return "", fmt.Errorf("push manifest = %d %s", st, body)
	}
	return sha(m), nil
}

// TestGC_WhilePushing runs the garbage collector in a loop while several
// clients push images that share a layer the collector is about to remove
// (its only image was deleted and it is past the grace period). A push
// may be told to try again; once it succeeds, every blob its manifest
// needs must stay readable, with the right content, through any number of
// later collections. Both databases, since PostgreSQL runs the collector
// and the pushes truly in parallel.
func TestGC_WhilePushing(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { testGCWhilePushing(t, apptest.WithStore(b.URL(t))) })
	}
}

func testGCWhilePushing(t *testing.T, opt apptest.Option) {
	clock := apptest.NewClock(time.Now())
	w := newWorld(t, opt, apptest.WithClock(clock.Now))
	o := w.org(t, "acme")
	dev := w.member(t, o, "dev", authz.Developer)
	base := w.a.URL
	shared, err := os.ReadFile(layerTar(t, map[string]string{"usr/share/base": "a layer many images share\n"}))
	if err != nil {
		t.Fatal(err)
	}
	config := func(s string) []byte {
		return []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + sha(shared) + `"]},"comment":"` + s + `"}`)
	}

	// The shared layer's only image is deleted, and time passes: the layer
	// and its old config are garbage.
	old, err := pushImage(base, dev, "acme/old", "v1", config("old"), shared)
	if err != nil {
		t.Fatal(err)
	}
	if st, body, err := send(base, w.admin, "DELETE", "/v2/acme/old/manifests/"+old, nil, nil); err != nil || st != 202 {
		t.Fatalf("delete old image = %d %s %v", st, body, err)
	}
	clock.Advance(2 * time.Hour)

	const pushers, images = 4, 6
	for i := range pushers {
		w.configure(t, fmt.Sprintf("acme/new%d", i), registry.RepositorySettings{Quarantine: ptr(false)})
	}
	done := make(chan struct{})
	gcErr := make(chan error, 1)
	removed := 0 // collections that removed blobs
	go func() {
		defer close(gcErr)
		for {
			select {
			case <-done:
				return
			default:
			}
			st, body, err := send(base, w.admin, "POST", "/api/v1/registry/gc", nil, nil)
			if err != nil || st != 200 {
				gcErr <- fmt.Errorf("gc = %d %s %v", st, body, err)
				return
			}
			var res registry.GCResult
			if err := json.Unmarshal(body, &res); err != nil {
				gcErr <- err
				return
			}
			if res.Blobs > 0 {
				removed++
			}
		}
	}()
	type pushed struct {
		repo, digest string
		config       []byte
	}
	var mu sync.Mutex
	var all []pushed
	var retries int
	var wg sync.WaitGroup
	errs := make(chan error, pushers)
	for i := range pushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			repo := fmt.Sprintf("acme/new%d", i)
			for j := range images {
				cfg := config(fmt.Sprintf("%d-%d", i, j))
				var d string
				var err error
				for attempt := 0; attempt < 10; attempt++ {
					if d, err = pushImage(base, dev, repo, fmt.Sprintf("v%d", j), cfg, shared); err == nil {
						break
					}
					mu.Lock()
					retries++
					mu.Unlock()
				}
				if err != nil {
					errs <- fmt.Errorf("%s:v%d: %w", repo, j, err)
					return
				}
				mu.Lock()
				all = append(all, pushed{repo, d, cfg})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(done)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := <-gcErr; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d images pushed, %d pushes told to retry, %d collections removed blobs", len(all), retries, removed)

	// Later collections, past the grace period, keep everything referenced.
	clock.Advance(2 * time.Hour)
	var gc registry.GCResult
	w.a.Client(t, w.admin).Must(200, "POST", "/api/v1/registry/gc", nil).Decode(t, &gc)
	clock.Advance(2 * time.Hour)
	w.a.Client(t, w.admin).Must(200, "POST", "/api/v1/registry/gc", nil).Decode(t, &gc)
	if len(all) != pushers*images {
		t.Fatalf("%d of %d images pushed", len(all), pushers*images)
	}
	for _, p := range all {
		if st, body, err := send(base, dev, "GET", "/v2/"+p.repo+"/manifests/"+p.digest, map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"}, nil); err != nil || st != 200 {
			t.Fatalf("GET %s@%s = %d %s %v", p.repo, p.digest, st, body, err)
		}
		for _, b := range [][]byte{shared, p.config} {
			st, body, err := send(base, dev, "GET", "/v2/"+p.repo+"/blobs/"+sha(b), nil, nil)
			if err != nil || st != 200 || !bytes.Equal(body, b) {
				t.Fatalf("blob %s of %s@%s after collections = %d (%d bytes) %v", sha(b), p.repo, p.digest, st, len(body), err)
			}
		}
	}
	// The deleted image's config is gone.
	if st, _, _ := send(base, w.admin, "GET", "/v2/acme/old/blobs/"+sha(config("old")), nil, nil); st != 404 {
		t.Errorf("the deleted image's config is still served: %d", st)
	}
}
