package policy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/httpapi"
)

// processCPU is the CPU time (user + system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAdmission_HTTPS sends AdmissionReviews to the running app's
// webhook over HTTPS with a service account's token (authn, authz,
// decision and decision log included), from parallel keep-alive clients,
// and reports the process's CPU time per request (server and client:
// they share the process). Its cases:
//
//   - token-get: the peer, an authenticated GET of the admission gate's
//     schema with the same token — what any API request here costs,
//     token verification included;
//   - replicas: pods of two ReplicaSets (generated names), as a cluster
//     sends them: they share the admission gate's cached results;
//   - distinct: every pod differs, so every review is evaluated.
//
// bench/admission.sh measures the same against `rampart up`.
//
//	go test -run XXX -bench Admission_HTTPS -benchtime 3000x ./internal/policy
func BenchmarkAdmission_HTTPS(b *testing.B) {
	r := startRampart(b)
	url := "https://" + r.host + httpapi.Prefix + "/orgs/acme/admission/prod"
	schema := "https://" + r.host + httpapi.Prefix + "/policy/gates/admission/schema"
	registry := "localhost:" + strings.Split(r.host, ":")[1]
	// The same service account's token, with org:read for the peer GET.
	var tok httpapi.CreatedToken
	r.admin.Must(http.StatusCreated, "POST", httpapi.Prefix+"/orgs/acme/service-accounts/"+r.bot+"/tokens",
		httpapi.CreateTokenRequest{Name: "bench", Scopes: []string{"policy:decide", "org:read"}}).Decode(b, &tok)
	client := r.a.Client(b, tok.Secret).HTTP
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	send := func(b *testing.B, req *http.Request) *http.Response {
		req.Header.Set("Authorization", "Bearer "+tok.Secret)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			b.Error(err)
			return nil
		}
		return resp
	}
	run := func(b *testing.B, one func(b *testing.B, i int64) bool) {
		var n atomic.Int64
		b.SetParallelism(16)
		cpu := processCPU()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if !one(b, n.Add(1)) {
					return
				}
			}
		})
		b.StopTimer()
		b.ReportMetric(float64((processCPU()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
	}
	b.Run("token-get", func(b *testing.B) {
		run(b, func(b *testing.B, _ int64) bool {
			req, _ := http.NewRequest("GET", schema, nil)
			resp := send(b, req)
			if resp == nil {
				return false
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return false
			}
			return true
		})
	})
	for _, replicas := range []bool{true, false} {
		name := "distinct"
		if replicas {
			name = "replicas"
		}
		b.Run(name, func(b *testing.B) {
			run(b, func(b *testing.B, i int64) bool {
				deny := i%2 == 1
				var obj map[string]any
				if replicas {
					rs := "web-7d9f8b6c5-"
					if deny {
						rs = "debug-5c6b7d8f9-"
					}
					obj = pod(rs+fmt.Sprint(i), registry, func(_, meta map[string]any) { meta["generateName"] = rs })
				} else {
					obj = pod(fmt.Sprintf("p%d", i), registry, nil)
				}
				if deny {
					privileged(obj["spec"].(map[string]any), nil)
				}
				body, _ := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": map[string]any{
					"uid": fmt.Sprint(i), "kind": map[string]string{"kind": "Pod", "version": "v1"}, "namespace": "shop", "operation": "CREATE", "object": obj}})
				req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
				resp := send(b, req)
				if resp == nil {
					return false
				}
				var out struct {
					Response struct{ Allowed bool } `json:"response"`
				}
				_ = json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				if resp.StatusCode != 200 || out.Response.Allowed == deny {
					b.Errorf("status %d allowed %v", resp.StatusCode, out.Response.Allowed)
					return false
				}
				return true
			})
		})
	}
}
