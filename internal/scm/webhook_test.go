package scm_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/scm"
)

// receiver is a webhook target that records what it gets and answers
// each delivery (by GUID) with the statuses it is told to, in turn, then
// 200.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	got      []delivery
	statuses []int
	tries    map[string]int
	hang     chan struct{} // when set, requests wait for it (or the client)
}

type delivery struct {
	event, guid, signature string
	body                   []byte
	at                     time.Time
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	rc := &receiver{statuses: statuses, tries: map[string]int{}}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, delivery{event: r.Header.Get("X-GitHub-Event"), guid: r.Header.Get("X-GitHub-Delivery"),
			signature: r.Header.Get("X-Hub-Signature-256"), body: body, at: time.Now()})
		status := http.StatusOK
		guid := r.Header.Get("X-GitHub-Delivery")
		if n := rc.tries[guid]; n < len(rc.statuses) {
			status = rc.statuses[n]
		}
		rc.tries[guid]++
		hang := rc.hang
		rc.mu.Unlock()
		if hang != nil {
			select {
			case <-hang:
			case <-r.Context().Done():
			}
			return
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "thanks")
	}))
	t.Cleanup(func() {
		rc.mu.Lock()
		if rc.hang != nil {
			close(rc.hang)
			rc.hang = nil
		}
		rc.mu.Unlock()
		rc.Close()
	})
	return rc
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

// waitDeliveries polls a webhook's delivery log until ok says it is done.
func (w *world) waitDeliveries(t *testing.T, path string, ok func([]scm.DeliveryJSON) bool) []scm.DeliveryJSON {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var ds []scm.DeliveryJSON
		w.admin.Must(http.StatusOK, "GET", path+"?payload=true", nil).Decode(t, &ds)
		if ok(ds) {
			return ds
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries of %s never got there: %+v", path, ds)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func settled(n int) func([]scm.DeliveryJSON) bool {
	return func(ds []scm.DeliveryJSON) bool {
		if len(ds) < n {
			return false
		}
		for _, d := range ds {
			if d.State == "pending" || d.State == "retrying" {
				return false
			}
		}
		return true
	}
}

// TestWebhooks_SignedGitHubPayloads: a push and a pull request reach a
// repository webhook and an org webhook as GitHub payloads with a valid
// HMAC signature; a failing target is retried with backoff until it
// answers; a delivery can be sent again.
func TestWebhooks_SignedGitHubPayloads(t *testing.T) { eachStore(t, testWebhooks_SignedGitHubPayloads) }

func testWebhooks_SignedGitHubPayloads(t *testing.T, store apptest.Option) {
	w := newWorld(t, store)
	w.createRepo(t, "app")
	target := newReceiver(t, 500, 502) // two failures, then success
	orgTarget := newReceiver(t)
	var hook, orgHook scm.WebhookJSON
	w.admin.Must(http.StatusCreated, "POST", repoAPI+"/hooks", scm.WebhookRequest{URL: target.URL, Secret: "s3cret"}).Decode(t, &hook)
	if !hook.HasSecret || len(hook.Events) != 2 {
		t.Errorf("hook = %+v", hook)
	}
	w.admin.Must(http.StatusCreated, "POST", "/api/v1/orgs/acme/hooks", scm.WebhookRequest{URL: orgTarget.URL, Events: []string{"pull_request"}}).Decode(t, &orgHook)
	w.admin.Must(http.StatusBadRequest, "POST", repoAPI+"/hooks", scm.WebhookRequest{URL: "ftp://x"})
	w.admin.Must(http.StatusBadRequest, "POST", repoAPI+"/hooks", scm.WebhookRequest{URL: "http://user:pw@x"})

	dir := w.workdir(t, w.cloneURL(t, "app", "admin", w.token))
	w.must(t, dir, "push", "--quiet", "origin", "main")
	head := w.commit(t, dir, "feature work", map[string]string{"f.txt": "f\n"})
	w.must(t, dir, "push", "--quiet", "origin", "main:feature")
	w.admin.Must(http.StatusCreated, "POST", repoAPI+"/pulls", scm.CreatePullRequest{Title: "Feature", Head: "feature"})

	log := repoAPI + "/hooks/" + strconv.FormatInt(hook.ID, 10) + "/deliveries"
	ds := w.waitDeliveries(t, log, settled(3))
	// Newest first: the pull request, the feature push, the main push.
	if ds[0].Event != "pull_request" || ds[1].Event != "push" || ds[2].Event != "push" {
		t.Fatalf("delivery log: %+v", ds)
	}
	first := ds[2]
	if first.State != "delivered" || first.Attempts != 3 || first.StatusCode != 200 {
		t.Errorf("first delivery (two failures first): %+v", first)
	}
	all := target.deliveries()
	var got []delivery // the attempts of the first delivery
	for _, d := range all {
		if d.guid == first.GUID {
			got = append(got, d)
		}
	}
	if len(got) != 3 || len(all) != 9 {
		t.Fatalf("receiver got %d requests, %d of the first delivery", len(all), len(got))
	}
	// The retries waited: 200ms, then 600ms.
	if gap := got[1].at.Sub(got[0].at); gap < 200*time.Millisecond {
		t.Errorf("first retry after %s, want ≥ 200ms", gap)
	}
	if gap := got[2].at.Sub(got[1].at); gap < 600*time.Millisecond {
		t.Errorf("second retry after %s, want ≥ 600ms", gap)
	}
	for _, d := range all {
		if !scm.VerifySignature([]byte("s3cret"), d.body, d.signature) {
			t.Errorf("delivery %s: bad signature %q", d.guid, d.signature)
		}
	}
	var push struct {
		Ref, Before, After string
		Commits            []struct{ ID, Message string }
		Repository         struct {
			FullName string `json:"full_name"`
			CloneURL string `json:"clone_url"`
			Private  bool
		}
		Pusher struct{ Name string }
	}
	if err := json.Unmarshal([]byte(ds[1].Payload), &push); err != nil {
		t.Fatal(err)
	}
	if push.Ref != "refs/heads/feature" || push.After != head || len(push.Commits) != 1 || push.Commits[0].Message != "feature work" ||
		push.Repository.FullName != "acme/app" || !push.Repository.Private || push.Pusher.Name != "admin" {
		t.Errorf("push payload: %+v", push)
	}
	var pull struct {
		Action      string
		Number      int
		PullRequest struct {
			State string
			Head  struct{ Ref, SHA string }
			Base  struct{ Ref string }
		} `json:"pull_request"`
	}
	if err := json.Unmarshal([]byte(ds[0].Payload), &pull); err != nil {
		t.Fatal(err)
	}
	if pull.Action != "opened" || pull.Number != 1 || pull.PullRequest.Head.SHA != head || pull.PullRequest.Base.Ref != "main" {
		t.Errorf("pull_request payload: %+v", pull)
	}
	// The org webhook took only the pull request, unsigned.
	og := orgTarget.deliveries()
	if len(og) != 1 || og[0].event != "pull_request" || og[0].signature != "" {
		t.Errorf("org webhook got %+v", og)
	}

	// Redelivery: same GUID, a new entry of the log.
	var re scm.DeliveryJSON
	w.admin.Must(http.StatusAccepted, "POST", log+"/"+strconv.FormatInt(first.ID, 10)+"/redeliver", nil).Decode(t, &re)
	ds = w.waitDeliveries(t, log, settled(4))
	if ds[0].GUID != first.GUID || ds[0].RedeliveryOf != first.ID || ds[0].State != "delivered" {
		t.Errorf("redelivery: %+v", ds[0])
	}
	w.admin.Must(http.StatusNotFound, "POST", log+"/999999/redeliver", nil)
}

// TestWebhooks_HangingTarget times a target out, retries it, and gives
// up after the last attempt; other webhooks are not held up.
func TestWebhooks_HangingTarget(t *testing.T) {
	w := newWorld(t, apptest.WithConfig(func(c *config.Config) {
		c.SCM.WebhookTimeout = 300 * time.Millisecond
		c.SCM.WebhookBackoff = 100 * time.Millisecond
		c.SCM.WebhookAttempts = 2
	}))
	w.createRepo(t, "app")
	hanging := newReceiver(t)
	hanging.hang = make(chan struct{})
	fine := newReceiver(t)
	var h1, h2 scm.WebhookJSON
	w.admin.Must(http.StatusCreated, "POST", repoAPI+"/hooks", scm.WebhookRequest{URL: hanging.URL}).Decode(t, &h1)
	w.admin.Must(http.StatusCreated, "POST", repoAPI+"/hooks", scm.WebhookRequest{URL: fine.URL}).Decode(t, &h2)
	dir := w.workdir(t, w.cloneURL(t, "app", "admin", w.token))
	w.must(t, dir, "push", "--quiet", "origin", "main")

	ds := w.waitDeliveries(t, repoAPI+"/hooks/"+strconv.FormatInt(h1.ID, 10)+"/deliveries", settled(1))
	if d := ds[0]; d.State != "failed" || d.Attempts != 2 || d.Error != "timed out after 300ms" {
		t.Errorf("hanging target's delivery: %+v", d)
	}
	ds = w.waitDeliveries(t, repoAPI+"/hooks/"+strconv.FormatInt(h2.ID, 10)+"/deliveries", settled(1))
	if d := ds[0]; d.State != "delivered" || d.Attempts != 1 {
		t.Errorf("other target's delivery: %+v", d)
	}
}
