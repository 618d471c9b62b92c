package policy

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/exception"
)

// replicaReview is an AdmissionReview for a pod of a ReplicaSet, as the
// API server sends it to a validating webhook: generated name, uid,
// resourceVersion and managedFields set; change edits it before encoding.
func replicaReview(t testing.TB, change func(req, obj, meta, container map[string]any)) []byte {
	t.Helper()
	container := map[string]any{"name": "app", "image": "busybox",
		"resources":       map[string]any{"limits": map[string]any{"cpu": "100m", "memory": "64Mi"}},
		"securityContext": map[string]any{"privileged": true, "allowPrivilegeEscalation": false}}
	meta := map[string]any{"name": "web-7d9f8b6c5-x2k4q", "generateName": "web-7d9f8b6c5-", "namespace": "shop",
		"uid": "0b3e5f7a-0000-4000-8000-000000000001", "resourceVersion": "4711", "creationTimestamp": "2026-11-26T01:00:00Z",
		"labels":          map[string]any{"app.kubernetes.io/name": "web", "pod-template-hash": "7d9f8b6c5"},
		"ownerReferences": []any{map[string]any{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f8b6c5", "uid": "9c1d-rs"}},
		"managedFields":   []any{map[string]any{"manager": "kube-controller-manager", "operation": "Update", "time": "2026-11-26T01:00:00Z"}}}
	obj := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": meta,
		"spec": map[string]any{"securityContext": map[string]any{"runAsNonRoot": true}, "containers": []any{container}}}
	req := map[string]any{"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "kind": map[string]any{"group": "", "version": "v1", "kind": "Pod"},
		"namespace": "shop", "name": "web-7d9f8b6c5-x2k4q", "operation": "CREATE",
		"userInfo": map[string]any{"username": "system:serviceaccount:kube-system:replicaset-controller"}, "object": obj}
	if change != nil {
		change(req, obj, meta, container)
	}
	b, err := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAdmissionCache_SharesOnlyWhatPoliciesCannotTell: two reviews share
// a cache entry exactly when they differ in fields the policies do not
// see; the shared answer is the one a fresh engine gives.
func TestAdmissionCache_SharesOnlyWhatPoliciesCannotTell(t *testing.T) {
	tests := []struct {
		name   string
		change func(req, obj, meta, container map[string]any)
		share  bool
	}{
		{"another replica (uid, generated name, resourceVersion, managedFields, creationTimestamp)", func(req, _, meta, _ map[string]any) {
			req["uid"], req["name"], meta["name"], meta["uid"] = "u-2", "web-7d9f8b6c5-zz9pl", "web-7d9f8b6c5-zz9pl", "0b3e-2"
			meta["resourceVersion"], meta["creationTimestamp"] = "4712", "2026-11-26T01:00:01Z"
			meta["managedFields"] = []any{map[string]any{"manager": "other"}}
		}, true},
		{"a name the user gave", func(req, _, meta, _ map[string]any) {
			delete(meta, "generateName")
			req["name"], meta["name"] = "debug", "debug"
		}, false},
		{"another generateName", func(req, _, meta, _ map[string]any) {
			meta["generateName"], meta["name"], req["name"] = "api-5c-", "api-5c-x2k4q", "api-5c-x2k4q"
		}, false},
		{"a name that does not come from generateName", func(req, _, meta, _ map[string]any) {
			meta["name"], req["name"] = "debug", "debug"
		}, false},
		{"a chosen name that starts with the generateName", func(req, _, meta, _ map[string]any) {
			meta["name"], req["name"] = "web-7d9f8b6c5-evil-debug", "web-7d9f8b6c5-evil-debug"
		}, false},
		{"a five-letter suffix the generator cannot draw", func(req, _, meta, _ map[string]any) {
			meta["name"], req["name"] = "web-7d9f8b6c5-debug", "web-7d9f8b6c5-debug"
		}, false},
		{"namespace", func(req, _, meta, _ map[string]any) { req["namespace"], meta["namespace"] = "other", "other" }, false},
		{"request namespace only", func(req, _, _, _ map[string]any) { req["namespace"] = "other" }, false},
		{"image", func(_, _, _, c map[string]any) { c["image"] = "registry.example/shop/web@sha256:00" }, false},
		{"privileged", func(_, _, _, c map[string]any) { c["securityContext"].(map[string]any)["privileged"] = false }, false},
		{"container name", func(_, _, _, c map[string]any) { c["name"] = "sidecar" }, false},
		{"limits", func(_, _, _, c map[string]any) {
			delete(c["resources"].(map[string]any)["limits"].(map[string]any), "cpu")
		}, false},
		{"labels", func(_, _, meta, _ map[string]any) { meta["labels"] = map[string]any{} }, false},
		{"owner", func(_, _, meta, _ map[string]any) { meta["ownerReferences"] = []any{} }, false},
		{"host network", func(_, obj, _, _ map[string]any) { obj["spec"].(map[string]any)["hostNetwork"] = true }, false},
		{"operation", func(req, _, _, _ map[string]any) { req["operation"] = "UPDATE" }, false},
		{"kind", func(req, obj, _, _ map[string]any) {
			req["kind"] = map[string]any{"group": "", "version": "v1", "kind": "PodTemplate"}
			obj["kind"] = "PodTemplate"
		}, false},
		{"user", func(req, _, _, _ map[string]any) { req["userInfo"] = map[string]any{"username": "mallory"} }, false},
		{"dry run", func(req, _, _, _ map[string]any) { req["dryRun"] = true }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := engine(t)
			first, second := replicaReview(t, nil), replicaReview(t, tt.change)
			if _, err := e.Decide(t.Context(), GateAdmission, Input{Environment: "prod", Document: first}, nil, testNow); err != nil {
				t.Fatal(err)
			}
			got, err := e.Decide(t.Context(), GateAdmission, Input{Environment: "prod", Document: second}, nil, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if n := e.results.len(); (n == 1) != tt.share {
				t.Errorf("%d cache entries after two reviews, want shared = %v", n, tt.share)
			}
			// The answer is the one an engine that never saw the first
			// review gives.
			want, err := engine(t).Decide(t.Context(), GateAdmission, Input{Environment: "prod", Document: second}, nil, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".DurationMS" }, cmp.Ignore())); diff != "" {
				t.Errorf("decision from the cache differs from a fresh one (-fresh +cached):\n%s", diff)
			}
		})
	}
}

// TestAdmissionCache_EveryOtherFieldIsInTheKey: changing any leaf of a
// review that is not a hidden field changes the cache key, so a policy
// of a policy repository reading any field never gets another review's
// answer.
func TestAdmissionCache_EveryOtherFieldIsInTheKey(t *testing.T) {
	base := replicaReview(t, nil)
	key := func(raw []byte) string {
		t.Helper()
		doc, err := decodeInput(GateAdmission, raw)
		if err != nil {
			t.Fatal(err)
		}
		return doc.key
	}
	want := key(base)
	// A generated name is hidden too, but changing it to "changed" makes
	// it a name that does not come from generateName: in the key.
	// The contract (docs/policy.md), written out here rather than read
	// from admissionVolatile.
	hidden := []string{"/request/uid", "/request/object/metadata/uid", "/request/object/metadata/resourceVersion",
		"/request/object/metadata/managedFields", "/request/object/metadata/creationTimestamp"}
	var doc map[string]any
	if err := json.Unmarshal(base, &doc); err != nil {
		t.Fatal(err)
	}
	var leaves []string
	var walk func(path string, v any, set func(any))
	walk = func(path string, v any, set func(any)) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				walk(path+"/"+k, c, func(n any) { x[k] = n })
			}
		case []any:
			for i, c := range x {
				walk(fmt.Sprintf("%s/%d", path, i), c, func(n any) { x[i] = n })
			}
		default:
			leaves = append(leaves, path)
			under := slices.ContainsFunc(hidden, func(h string) bool { return path == h || strings.HasPrefix(path, h+"/") })
			if path == "/apiVersion" || path == "/kind" || path == "/request/operation" {
				return // fixed by the schema; changing them is refused
			}
			changed := "changed"
			if _, ok := x.(bool); ok {
				changed = "true"
			}
			set(changed)
			raw, err := json.Marshal(doc)
			set(v)
			if err != nil {
				t.Fatal(err)
			}
			d, err := decodeInput(GateAdmission, raw)
			if err != nil {
				if under {
					t.Errorf("%s: %v", path, err)
				}
				return
			}
			if got := d.key != want; got == under {
				t.Errorf("changing %s: key changed = %v, want %v", path, got, !under)
			}
		}
	}
	walk("", doc, nil)
	if len(leaves) < 20 {
		t.Fatalf("walked only %d leaves", len(leaves))
	}
}

// TestAdmissionCache_ExceptionsApplyAtOnce: the cache keeps what the
// policies said, not the decision: an exception added after a review was
// cached sets the violation aside on the next review.
func TestAdmissionCache_ExceptionsApplyAtOnce(t *testing.T) {
	e := engine(t)
	review := replicaReview(t, nil)
	d, err := e.Decide(t.Context(), GateAdmission, Input{Environment: "prod", Document: review}, nil, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if d.Allow {
		t.Fatal("the privileged pod was admitted")
	}
	exc := []exception.Exception{{ID: "RMP-ADM-003", Reason: "debug pod", Source: "test"}, {ID: "RMP-ADM-006", Reason: "busybox", Source: "test"},
		{ID: "RMP-ADM-007", Reason: "busybox", Source: "test"}}
	d, err = e.Decide(t.Context(), GateAdmission, Input{Environment: "prod", Document: review}, exc, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if e.results.len() != 1 {
		t.Errorf("%d cache entries, want 1", e.results.len())
	}
	if !d.Allow || len(d.Excepted) != 3 {
		t.Errorf("with exceptions: allow %v, excepted %d, deny %+v", d.Allow, len(d.Excepted), d.Deny)
	}
}

// TestAdmissionCache_ErrorsAreNotKept: a review whose evaluation timed
// out is evaluated again next time (and fails closed each time).
func TestAdmissionCache_ErrorsAreNotKept(t *testing.T) {
	slow := bundle("repo", map[string]string{
		"p.rego": `package rampart.gates.admission.slow

metadata := {"id": "ACME-8", "title": "Slow", "remediation": "r"}

deny contains "done" if count([x | some x in numbers.range(1, 100000000); x < 0]) > 0
`,
	})
	e, err := NewEngine(t.Context(), []*Bundle{builtin(t), slow}, EngineOptions{Timeout: 50 * time.Millisecond, Settings: testSettings})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		d, err := e.Decide(t.Context(), GateAdmission, Input{Environment: "prod", Document: replicaReview(t, nil)}, nil, testNow)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allow || len(d.Errors) == 0 {
			t.Errorf("timed-out review: allow %v, errors %v", d.Allow, d.Errors)
		}
	}
	if n := e.results.len(); n != 0 {
		t.Errorf("%d cache entries after timeouts, want 0", n)
	}
}

// TestAdmissionCache_Bounded: the cache holds at most two generations.
func TestAdmissionCache_Bounded(t *testing.T) {
	c := newResultCache()
	for i := range 3*resultCacheSize + 7 {
		c.put(fmt.Sprint(i), nil)
	}
	if n := c.len(); n > 2*resultCacheSize {
		t.Errorf("%d entries, over %d", n, 2*resultCacheSize)
	}
	if _, ok := c.get(fmt.Sprint(3*resultCacheSize + 6)); !ok {
		t.Error("the newest entry is gone")
	}
	if _, ok := c.get("0"); ok {
		t.Error("the oldest entry is still there")
	}
}

// TestAdmissionCache_TimeDependentPoliciesAreNotCached: a policy whose
// answer depends on the clock (a change freeze) is evaluated for every
// review; the first answer is never reused.
func TestAdmissionCache_TimeDependentPoliciesAreNotCached(t *testing.T) {
	freeze := bundle("repo", map[string]string{
		"p.rego": `package rampart.gates.admission.freeze

metadata := {"id": "ACME-9", "title": "Change freeze", "remediation": "wait"}

deny contains "change freeze" if time.now_ns() > 0
`,
	})
	e, err := NewEngine(t.Context(), []*Bundle{builtin(t), freeze}, EngineOptions{Settings: testSettings})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := e.Decide(t.Context(), GateAdmission, Input{Environment: "prod", Document: replicaReview(t, nil)}, nil, testNow); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.results.len(); n != 0 {
		t.Errorf("%d cache entries with a policy that reads the clock, want 0", n)
	}
	// Without it the same reviews are cached.
	plain, err := NewEngine(t.Context(), []*Bundle{builtin(t)}, EngineOptions{Settings: testSettings})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Decide(t.Context(), GateAdmission, Input{Environment: "prod", Document: replicaReview(t, nil)}, nil, testNow); err != nil {
		t.Fatal(err)
	}
	if n := plain.results.len(); n != 1 {
		t.Errorf("%d cache entries for the built-in policies, want 1", n)
	}
}
