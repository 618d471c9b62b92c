package policy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rampartsec/rampart/internal/httpapi"
)

// BenchmarkAdmission_HTTPS sends AdmissionReviews to the running app's
// webhook over HTTPS (authn, authz, decision and decision log included),
// from parallel keep-alive clients. bench/admission.sh measures the same
// against `rampart up`.
func BenchmarkAdmission_HTTPS(b *testing.B) {
	r := startRampart(b)
	url := "https://" + r.host + httpapi.Prefix + "/orgs/acme/admission/prod"
	registry := "localhost:" + strings.Split(r.host, ":")[1]
	client := r.a.Client(b, r.botTok).HTTP
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			deny := i%2 == 1
			obj := pod(fmt.Sprintf("p%d", i), registry, nil)
			if deny {
				privileged(obj["spec"].(map[string]any), nil)
			}
			body, _ := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": map[string]any{
				"uid": fmt.Sprint(i), "kind": map[string]string{"kind": "Pod", "version": "v1"}, "namespace": "shop", "operation": "CREATE", "object": obj}})
			req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+r.botTok)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			var out struct {
				Response struct{ Allowed bool } `json:"response"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if resp.StatusCode != 200 || out.Response.Allowed == deny {
				b.Errorf("status %d allowed %v", resp.StatusCode, out.Response.Allowed)
				return
			}
		}
	})
}
