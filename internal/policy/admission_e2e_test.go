package policy_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/config"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/kubetest"
	"github.com/rampartsec/rampart/internal/policy"
	"github.com/rampartsec/rampart/internal/policy/kubeworkloads"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// cluster is a real kube-apiserver (with etcd, the controller manager,
// the scheduler and kwok), started once for this package's tests.
var cluster kubetest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	cluster.Stop()
	os.Exit(code)
}

// rampart is a running Rampart serving TLS, with an org whose service
// account the cluster authenticates as.
type rampart struct {
	a      *apptest.App
	admin  *apptest.Client
	host   string // 127.0.0.1:PORT
	ca     []byte
	bot    string // the service account's user name
	botTok string
}

func startRampart(t testing.TB) *rampart {
	t.Helper()
	a := apptest.Start(t, apptest.WithConfig(func(c *config.Config) { c.TLS = true }))
	r := &rampart{a: a, admin: a.Client(t, a.AdminToken(t))}
	u, err := url.Parse(a.URL)
	if err != nil {
		t.Fatal(err)
	}
	r.host = "127.0.0.1:" + u.Port()
	if r.ca, err = os.ReadFile(a.CAFile()); err != nil {
		t.Fatal(err)
	}
	r.admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs", httpapi.CreateOrgRequest{Name: "acme"})
	var sa httpapi.ServiceAccount
	r.admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs/acme/service-accounts",
		httpapi.CreateServiceAccountRequest{Name: "k8s-prod", Role: "developer"}).Decode(t, &sa)
	r.bot = sa.Username
	var tok httpapi.CreatedToken
	r.admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs/acme/service-accounts/"+r.bot+"/tokens",
		httpapi.CreateTokenRequest{Name: "apiserver", Scopes: []string{"policy:decide"}}).Decode(t, &tok)
	r.botTok = tok.Secret
	return r
}

// webhook registers a validating webhook pointing at Rampart's admission
// endpoint for environment prod, for pods and workloads in namespaces
// labelled rampart-test=selector.
func webhook(t *testing.T, c *kubetest.Cluster, r *rampart, name, selector, failurePolicy string) {
	t.Helper()
	rules := []any{
		map[string]any{"apiGroups": []string{""}, "apiVersions": []string{"v1"}, "operations": []string{"CREATE", "UPDATE"}, "resources": []string{"pods"}},
		map[string]any{"apiGroups": []string{"apps"}, "apiVersions": []string{"v1"}, "operations": []string{"CREATE", "UPDATE"},
			"resources": []string{"deployments", "statefulsets", "daemonsets"}},
	}
	c.Must(t, http.StatusCreated, "POST", "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
		"metadata": map[string]any{"name": name},
		"webhooks": []any{map[string]any{
			"name": "policy.rampart.dev",
			"clientConfig": map[string]any{"url": "https://" + r.host + httpapi.Prefix + "/orgs/acme/admission/prod",
				"caBundle": base64.StdEncoding.EncodeToString(r.ca)},
			"rules":                   rules,
			"namespaceSelector":       map[string]any{"matchLabels": map[string]string{"rampart-test": selector}},
			"failurePolicy":           failurePolicy,
			"sideEffects":             "None",
			"timeoutSeconds":          5,
			"admissionReviewVersions": []string{"v1"},
		}},
	})
	t.Cleanup(func() {
		_, _, _ = c.Do(context.Background(), "DELETE", "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/"+name, nil)
	})
}

// pod is a Pod the built-in admission policies admit, from Rampart's own
// registry; change modifies it.
func pod(name, registry string, change func(spec map[string]any, meta map[string]any)) map[string]any {
	container := map[string]any{
		"name":            "app",
		"image":           registry + "/shop/web@sha256:4c1e2a0f3b8d9e7c6a5b4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a",
		"resources":       map[string]any{"limits": map[string]any{"cpu": "100m", "memory": "64Mi"}},
		"securityContext": map[string]any{"allowPrivilegeEscalation": false},
	}
	spec := map[string]any{"securityContext": map[string]any{"runAsNonRoot": true, "runAsUser": 1000}, "containers": []any{container}}
	meta := map[string]any{"name": name, "labels": map[string]string{"app.kubernetes.io/name": "web"}}
	if change != nil {
		change(spec, meta)
	}
	return map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
}

func privileged(spec, _ map[string]any) {
	spec["containers"].([]any)[0].(map[string]any)["securityContext"] = map[string]any{"privileged": true, "allowPrivilegeEscalation": true}
}

// TestAdmission_KubeAPIServer registers Rampart as a validating webhook of
// a real kube-apiserver and checks what users of the cluster see: a pod
// that follows the policies is created, one that does not is refused
// with every reason and its fix, warnings reach kubectl, each review is
// in the decision log, and an org exception lets a reviewed pod in.
func TestAdmission_KubeAPIServer(t *testing.T) {
	c := cluster.Get(t)
	r := startRampart(t)
	c.SetWebhookToken(t, r.botTok)
	ns := c.Namespace(t, "shop", map[string]string{"rampart-test": "admission"})
	webhook(t, c, r, "rampart-admission", "admission", "Fail")
	pods := "/api/v1/namespaces/" + ns + "/pods"
	registry := "localhost:" + strings.Split(r.host, ":")[1] // rampart_registry: the public URL's host

	// The configuration reaches the API server's webhook informer within
	// a second or so: wait until a server-side dry run is judged.
	kubetest.Eventually(t, 30*time.Second, "the webhook judges pods", func() bool {
		return c.Call(t, "POST", pods+"?dryRun=All", pod("probe", registry, privileged)).Status == http.StatusForbidden
	})

	t.Run("allow", func(t *testing.T) {
		res := c.Must(t, http.StatusCreated, "POST", pods, pod("good", registry, nil))
		if w := res.Warnings(); len(w) != 0 {
			t.Errorf("warnings for a pod that follows every policy: %q", w)
		}
	})

	t.Run("deny with message", func(t *testing.T) {
		res := c.Call(t, "POST", pods, pod("debug", registry, func(spec, meta map[string]any) {
			privileged(spec, meta)
			spec["hostNetwork"] = true
			spec["containers"].([]any)[0].(map[string]any)["image"] = "busybox"
		}))
		msg := res.Message()
		if res.Status != http.StatusForbidden {
			t.Fatalf("privileged pod: %d %s, want 403", res.Status, res.Body)
		}
		for _, want := range []string{
			`admission webhook "policy.rampart.dev" denied the request`,
			"RMP-ADM-003: Pod/shop/debug: container app is privileged — fix: Remove securityContext.privileged: true",
			"RMP-ADM-005: Pod/shop/debug: the pod shares the node's network namespace (hostNetwork: true)",
			"RMP-ADM-006: Pod/shop/debug: container app uses busybox from docker.io, which is not an allowed registry",
			"RMP-ADM-007: Pod/shop/debug: container app uses busybox, a moving tag",
		} {
			if !strings.Contains(msg, want) {
				t.Errorf("denial message lacks %q:\n%s", want, msg)
			}
		}
		if r := c.Call(t, "GET", pods+"/debug", nil); r.Status != http.StatusNotFound {
			t.Errorf("the denied pod exists: %d", r.Status)
		}
	})

	t.Run("warnings reach the client", func(t *testing.T) {
		res := c.Must(t, http.StatusCreated, "POST", pods, pod("unlabelled", registry, func(_, meta map[string]any) { delete(meta, "labels") }))
		w := res.Warnings()
		if len(w) != 1 || w[0] != "RMP-ADM-008: Pod/shop/unlabelled lacks the required label app.kubernetes.io/name" {
			t.Errorf("warnings = %q", w)
		}
	})

	t.Run("every review is in the decision log", func(t *testing.T) {
		var ds []policy.Decision
		r.admin.Must(http.StatusOK, "GET", httpapi.Prefix+"/orgs/acme/policy/decisions?subject="+url.QueryEscape("k8s:prod/shop/Pod/debug"), nil).Decode(t, &ds)
		if len(ds) != 1 || ds[0].Allow || ds[0].Gate != policy.GateAdmission || ds[0].Caller != r.bot || ds[0].Environment != "prod" {
			t.Fatalf("decisions for the denied pod = %+v", ds)
		}
		if !strings.HasPrefix(ds[0].Revision, "builtin@") || !strings.HasPrefix(ds[0].InputDigest, "sha256:") {
			t.Errorf("revision %q, digest %q", ds[0].Revision, ds[0].InputDigest)
		}
		r.admin.Must(http.StatusOK, "GET", httpapi.Prefix+"/orgs/acme/policy/decisions?subject="+url.QueryEscape("k8s:prod/shop/Pod/good"), nil).Decode(t, &ds)
		if len(ds) == 0 || !ds[0].Allow {
			t.Errorf("decisions for the admitted pod = %+v", ds)
		}
	})

	t.Run("an exception lets a reviewed pod in", func(t *testing.T) {
		res := r.admin.Do("POST", httpapi.Prefix+"/orgs/acme/exceptions", policy.ExceptionRequest{ID: "RMP-ADM-003",
			Image: registry + "/shop/web", Environment: "prod", Reason: "profiling agent, reviewed in SEC-42", Owner: "platform",
			Expires: time.Now().AddDate(0, 0, 7).Format("2006-01-02")})
		if res.Status != http.StatusCreated {
			t.Fatalf("add exception: %d %s", res.Status, res.Body)
		}
		// Privileged: set aside by the exception; what else it breaks is in
		// warn mode (a privileged container may escalate).
		created := c.Must(t, http.StatusCreated, "POST", pods, pod("profiler", registry, func(spec, _ map[string]any) {
			spec["containers"].([]any)[0].(map[string]any)["securityContext"] = map[string]any{"privileged": true}
		}))
		if w := created.Warnings(); len(w) != 1 || !strings.HasPrefix(w[0], "RMP-ADM-009: ") {
			t.Errorf("warnings = %q", w)
		}
		// The same pod from another image is still refused.
		other := c.Call(t, "POST", pods, pod("profiler2", registry, func(spec, _ map[string]any) {
			spec["containers"].([]any)[0].(map[string]any)["securityContext"] = map[string]any{"privileged": true}
			spec["containers"].([]any)[0].(map[string]any)["image"] = registry + "/shop/other@sha256:4c1e2a0f3b8d9e7c6a5b4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a"
		}))
		if other.Status != http.StatusForbidden || !strings.Contains(other.Message(), "RMP-ADM-003") {
			t.Errorf("another image: %d %s", other.Status, other.Message())
		}
		var ds []policy.Decision
		r.admin.Must(http.StatusOK, "GET", httpapi.Prefix+"/orgs/acme/policy/decisions?subject="+url.QueryEscape("k8s:prod/shop/Pod/profiler"), nil).Decode(t, &ds)
		if len(ds) != 1 || len(ds[0].Excepted) != 1 || ds[0].Excepted[0].Exception.Reason != "profiling agent, reviewed in SEC-42" {
			t.Errorf("decision = %+v", ds)
		}
	})
}

// TestAdmission_FailurePolicyWhenRampartIsDown: with Rampart unreachable,
// a webhook with failurePolicy Fail refuses every pod it covers, and one
// with Ignore admits them unchecked — which the runtime gate then
// reports.
func TestAdmission_FailurePolicyWhenRampartIsDown(t *testing.T) {
	c := cluster.Get(t)
	r := startRampart(t)
	c.SetWebhookToken(t, r.botTok)
	failNS := c.Namespace(t, "fail-closed", map[string]string{"rampart-test": "fail"})
	ignoreNS := c.Namespace(t, "fail-open", map[string]string{"rampart-test": "ignore"})
	webhook(t, c, r, "rampart-fail", "fail", "Fail")
	webhook(t, c, r, "rampart-ignore", "ignore", "Ignore")
	registry := "localhost:" + strings.Split(r.host, ":")[1]
	for _, ns := range []string{failNS, ignoreNS} {
		kubetest.Eventually(t, 30*time.Second, "the webhook judges pods in "+ns, func() bool {
			return c.Call(t, "POST", "/api/v1/namespaces/"+ns+"/pods?dryRun=All", pod("probe", registry, privileged)).Status == http.StatusForbidden
		})
	}

	r.a.Stop(t)

	res := c.Call(t, "POST", "/api/v1/namespaces/"+failNS+"/pods", pod("good", registry, nil))
	if res.Status != http.StatusInternalServerError || !strings.Contains(res.Message(), `failed calling webhook "policy.rampart.dev"`) {
		t.Errorf("failurePolicy Fail with Rampart down: %d %q, want 500 failed calling webhook", res.Status, res.Message())
	}
	res = c.Call(t, "POST", "/api/v1/namespaces/"+ignoreNS+"/pods", pod("slipped", registry, privileged))
	if res.Status != http.StatusCreated {
		t.Errorf("failurePolicy Ignore with Rampart down: %d %s, want the pod admitted unchecked", res.Status, res.Body)
	}

	// The runtime gate finds what slipped through.
	f := newFixture(t, storetest.OpenSQLite(t))
	ca, err := os.ReadFile(c.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	lister, err := kubeworkloads.New(kubeworkloads.Config{URL: c.URL, Token: c.Token, CAPEM: ca, Namespace: ignoreNS})
	if err != nil {
		t.Fatal(err)
	}
	d, err := f.svc.CheckRuntime(t.Context(), policy.RuntimeTarget{OrgID: f.org.ID, Environment: "prod", Workloads: lister})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, v := range d.Deny {
		msgs = append(msgs, v.Policy+": "+v.Message)
	}
	if d.Allow || !strings.Contains(strings.Join(msgs, "\n"), "RMP-RUN-001: Pod/fail-open/slipped: container app is privileged") {
		t.Errorf("runtime decision: allow %v, deny %q", d.Allow, msgs)
	}
	if d.Subject != "runtime:prod" {
		t.Errorf("subject %q", d.Subject)
	}
	stored, err := f.svc.Decisions(t.Context(), f.org.ID, policy.DecisionFilter{Subject: "runtime:prod"})
	if err != nil || len(stored) != 1 {
		t.Errorf("stored runtime decisions: %d, %v", len(stored), err)
	}
	b, _ := json.Marshal(d)
	t.Logf("runtime decision: %s", b)
}
