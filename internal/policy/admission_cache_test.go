package policy_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/rampartsec/rampart/internal/policy"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// replica is an AdmissionReview for pod i of a ReplicaSet whose pods are
// privileged, as the API server sends it.
func replica(i int) []byte {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789" // what the API server draws generated names from
	suffix := []byte{alphabet[i%27], alphabet[i/27%27], 'x', 'k', 'q'}
	name := "web-7d9f8b6c5-" + string(suffix)
	b, _ := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": map[string]any{
		"uid": fmt.Sprintf("uid-%d", i), "kind": map[string]string{"group": "", "version": "v1", "kind": "Pod"}, "namespace": "shop",
		"name": name, "operation": "CREATE", "object": map[string]any{"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"name": name, "generateName": "web-7d9f8b6c5-", "namespace": "shop", "resourceVersion": fmt.Sprint(i),
				"labels": map[string]string{"app.kubernetes.io/name": "web"}},
			"spec": map[string]any{"securityContext": map[string]any{"runAsNonRoot": true}, "containers": []any{map[string]any{
				"name": "app", "image": "rampart.example:8443/shop/web@sha256:00",
				"resources":       map[string]any{"limits": map[string]any{"cpu": "1", "memory": "1Gi"}},
				"securityContext": map[string]any{"privileged": true, "allowPrivilegeEscalation": false}}}}}}})
	return b
}

// TestAdmit_ReplicasAreEachRecorded: the replicas of a ReplicaSet share
// one evaluation, yet every review is answered for its own uid and
// recorded in the decision log under its own pod's name, also when they
// come all at once; a policy change applies to the next review.
func TestAdmit_ReplicasAreEachRecorded(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		fx := newFixture(t, db)
		const n = 40
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				review, err := fx.svc.Admit(t.Context(), fx.org, "prod", replica(i))
				switch {
				case err != nil:
					errs <- err
				case review.Response.UID != fmt.Sprintf("uid-%d", i) || review.Response.Allowed:
					errs <- fmt.Errorf("replica %d: answer %+v", i, review.Response)
				case !strings.Contains(review.Response.Status.Message, "Pod/shop/web-7d9f8b6c5-*: container app is privileged"):
					errs <- fmt.Errorf("replica %d: message %q", i, review.Response.Status.Message)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		got, err := fx.svc.Decisions(t.Context(), fx.org.ID, policy.DecisionFilter{Gate: policy.GateAdmission, Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		subjects := map[string]bool{}
		for _, d := range got {
			subjects[d.Subject] = true
		}
		if len(got) != n || len(subjects) != n || !subjects["k8s:prod/shop/Pod/web-7d9f8b6c5-pbxkq"] {
			t.Errorf("%d decisions recorded for %d distinct subjects, want %d each", len(got), len(subjects), n)
		}

		fx.write(t, "policy.yaml", "modes:\n  - policy: RMP-ADM-003\n    mode: audit\n")
		fx.write(t, "shop/pods.rego", `package rampart.gates.admission.shop_pods

metadata := {"id": "ACME-POD", "title": "No pods in shop", "remediation": "Deploy elsewhere."}

deny contains "shop takes no new pods" if input.request.namespace == "shop"
`)
		if _, err := fx.svc.Reload(t.Context()); err != nil {
			t.Fatal(err)
		}
		review, err := fx.svc.Admit(t.Context(), fx.org, "prod", replica(n))
		if err != nil {
			t.Fatal(err)
		}
		msg := review.Response.Status.Message
		if !strings.Contains(msg, "shop takes no new pods") || strings.Contains(msg, "is privileged") {
			t.Errorf("after the reload, the denial is still the old one:\n%s", msg)
		}
	})
}
