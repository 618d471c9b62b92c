package kubetest_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/kubetest"
)

var cluster kubetest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	cluster.Stop()
	os.Exit(code)
}

// TestCluster_RunsWorkloads: a Deployment's pods are scheduled onto the
// fake node and reported running.
func TestCluster_RunsWorkloads(t *testing.T) {
	c := cluster.Get(t)
	ns := c.Namespace(t, "workloads", nil)
	c.Must(t, http.StatusCreated, "POST", "/apis/apps/v1/namespaces/"+ns+"/deployments", map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web"},
		"spec": map[string]any{
			"replicas": 3,
			"selector": map[string]any{"matchLabels": map[string]string{"app": "web"}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]string{"app": "web"}},
				"spec":     map[string]any{"containers": []any{map[string]any{"name": "web", "image": "registry.example/web:1"}}},
			},
		},
	})
	kubetest.Eventually(t, 60*time.Second, "3 available replicas", func() bool {
		var d struct {
			Status struct {
				AvailableReplicas int `json:"availableReplicas"`
			} `json:"status"`
		}
		r := c.Call(t, "GET", "/apis/apps/v1/namespaces/"+ns+"/deployments/web", nil)
		return json.Unmarshal(r.Body, &d) == nil && d.Status.AvailableReplicas == 3
	})
	var pods struct {
		Items []struct {
			Spec struct {
				NodeName string `json:"nodeName"`
			} `json:"spec"`
			Status struct {
				Phase string `json:"phase"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal(c.Must(t, http.StatusOK, "GET", "/api/v1/namespaces/"+ns+"/pods", nil).Body, &pods); err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 3 {
		t.Fatalf("%d pods, want 3", len(pods.Items))
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName != kubetest.FakeNode || p.Status.Phase != "Running" {
			t.Errorf("pod on %q in phase %q, want running on %s", p.Spec.NodeName, p.Status.Phase, kubetest.FakeNode)
		}
	}
}

// TestCluster_CallsWebhooksWithTheToken: a validating webhook registered
// with a url on 127.0.0.1 is called, with the webhook token, and its
// denial reaches the client.
func TestCluster_CallsWebhooksWithTheToken(t *testing.T) {
	c := cluster.Get(t)
	var calls atomic.Int32
	var gotAuth atomic.Value
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		gotAuth.Store(r.Header.Get("Authorization"))
		var review struct {
			Request struct {
				UID string `json:"uid"`
			} `json:"request"`
		}
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &review)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
			"response": map[string]any{"uid": review.Request.UID, "allowed": false, "status": map[string]any{"code": 403, "message": "no pods named deny-me"}}})
	}))
	defer srv.Close()
	c.SetWebhookToken(t, "webhook-secret-token")
	ns := c.Namespace(t, "webhooked", map[string]string{"kubetest": "webhooked"})
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	c.Must(t, http.StatusCreated, "POST", "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
		"metadata": map[string]any{"name": "kubetest"},
		"webhooks": []any{map[string]any{
			"name":                    "deny.kubetest.example",
			"clientConfig":            map[string]any{"url": srv.URL + "/validate", "caBundle": base64.StdEncoding.EncodeToString(ca)},
			"rules":                   []any{map[string]any{"apiGroups": []string{""}, "apiVersions": []string{"v1"}, "operations": []string{"CREATE"}, "resources": []string{"configmaps"}}},
			"namespaceSelector":       map[string]any{"matchLabels": map[string]string{"kubetest": "webhooked"}},
			"failurePolicy":           "Fail",
			"sideEffects":             "None",
			"admissionReviewVersions": []string{"v1"},
		}},
	})
	t.Cleanup(func() {
		_, _, _ = c.Do(context.Background(), "DELETE", "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/kubetest", nil)
	})
	var r kubetest.Result
	kubetest.Eventually(t, 30*time.Second, "the webhook denies", func() bool {
		r = c.Call(t, "POST", "/api/v1/namespaces/"+ns+"/configmaps", map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": "deny-me"}})
		return r.Status == http.StatusForbidden
	})
	if !strings.Contains(r.Message(), "no pods named deny-me") || calls.Load() == 0 {
		t.Errorf("denial %q after %d calls", r.Message(), calls.Load())
	}
	if got := gotAuth.Load(); got != "Bearer webhook-secret-token" {
		t.Errorf("webhook saw Authorization %q", got)
	}
}
