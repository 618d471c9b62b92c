// Command admission is a load generator for Rampart's Kubernetes admission
// webhook: it sets up an org, a service account and a token on a running
// Rampart, then sends AdmissionReview v1 requests for pods — alternately
// one the built-in policies admit and one they deny — from -c concurrent
// clients over HTTPS keep-alive connections for -d, checks every answer,
// and prints reviews per second and latency percentiles.
//
//	admission -server https://localhost:8443 -ca DATA/tls/ca.crt -admin-password PW [-c 32] [-d 10s]
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	server := flag.String("server", "", "Rampart's URL (https://HOST:PORT)")
	caFile := flag.String("ca", "", "the CA file Rampart's certificate is issued by")
	adminPW := flag.String("admin-password", os.Getenv("RAMPART_ADMIN_PASSWORD"), "the admin password ($RAMPART_ADMIN_PASSWORD)")
	conc := flag.Int("c", 32, "concurrent clients")
	dur := flag.Duration("d", 10*time.Second, "how long to send")
	warm := flag.Duration("warmup", 2*time.Second, "how long to send before measuring")
	baseline := flag.Bool("baseline", false, "send the peer request instead: an authenticated, authorised GET of a small static document (the admission gate's schema) through the same server")
	distinct := flag.Bool("distinct", false, "make every pod different (a label of its own), so that no two reviews share a cached result; by default the pods are the replicas of two ReplicaSets, as a cluster sends them")
	flag.Parse()
	if err := run(*server, *caFile, *adminPW, *conc, *dur, *warm, *baseline, *distinct); err != nil {
		fmt.Fprintln(os.Stderr, "admission:", err)
		os.Exit(1)
	}
}

type api struct {
	base  string
	token string
	c     *http.Client
}

func (a *api) do(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func run(server, caFile, adminPW string, conc int, dur, warm time.Duration, baseline, distinct bool) error {
	if server == "" || caFile == "" || adminPW == "" {
		return errors.New("-server, -ca and -admin-password are required")
	}
	pemData, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemData)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConns: conc * 2, MaxIdleConnsPerHost: conc * 2, IdleConnTimeout: time.Minute}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	u, err := url.Parse(server)
	if err != nil {
		return err
	}

	// Setup: an org, a developer service account, a policy:decide token.
	a := &api{base: strings.TrimSuffix(server, "/"), c: client}
	var login struct {
		Token struct {
			Secret string `json:"token"`
		} `json:"token"`
	}
	if err := a.do("POST", "/api/v1/auth/login", map[string]string{"username": "admin", "password": adminPW, "token_name": "bench"}, &login); err != nil {
		return err
	}
	a.token = login.Token.Secret
	org := fmt.Sprintf("bench%d", time.Now().Unix()%100000)
	if err := a.do("POST", "/api/v1/orgs", map[string]string{"name": org}, nil); err != nil {
		return err
	}
	var sa struct {
		Username string `json:"username"`
	}
	if err := a.do("POST", "/api/v1/orgs/"+org+"/service-accounts", map[string]string{"name": "k8s", "role": "developer"}, &sa); err != nil {
		return err
	}
	var tok struct {
		Secret string `json:"token"`
	}
	if err := a.do("POST", "/api/v1/orgs/"+org+"/service-accounts/"+sa.Username+"/tokens",
		map[string]any{"name": "apiserver", "scopes": []string{"policy:decide", "org:read"}}, &tok); err != nil {
		return err
	}
	webhook := a.base + "/api/v1/orgs/" + org + "/admission/prod"
	schema := a.base + "/api/v1/policy/gates/admission/schema"
	registry := u.Host

	var (
		sent, warmed, wrong atomic.Int64
		measuring           atomic.Bool
		mu                  sync.Mutex
		lat                 []time.Duration
		wg                  sync.WaitGroup
		firstErr            atomic.Value
	)
	stop := time.Now().Add(warm + dur)
	for w := range conc {
		wg.Go(func() {
			var mine []time.Duration
			for i := 0; time.Now().Before(stop); i++ {
				deny := i%2 == 1
				var (
					allowed bool
					err     error
					start   time.Time
				)
				if baseline {
					start = time.Now()
					err = get(client, schema, tok.Secret)
					allowed = !deny
				} else {
					body := review(fmt.Sprintf("%d-%d", w, i), registry, deny, distinct)
					start = time.Now()
					allowed, err = post(client, webhook, tok.Secret, body)
				}
				took := time.Since(start)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					wrong.Add(1)
					continue
				}
				if allowed == deny {
					wrong.Add(1)
				}
				if measuring.Load() {
					sent.Add(1)
					mine = append(mine, took)
				} else {
					warmed.Add(1)
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	time.Sleep(warm)
	measuring.Store(true)
	begin := time.Now()
	wg.Wait()
	elapsed := time.Since(begin)
	if e := firstErr.Load(); e != nil {
		fmt.Fprintln(os.Stderr, "first error:", e)
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	what := "admission (replicas)"
	if distinct {
		what = "admission (distinct pods)"
	}
	if baseline {
		what = "baseline"
	}
	fmt.Printf("%s: clients %d, %s: %d requests, %.0f requests/s, p50 %s, p95 %s, p99 %s, wrong or failed answers %d (warm-up %d requests)\n",
		what, conc, elapsed.Round(time.Millisecond), sent.Load(), float64(sent.Load())/elapsed.Seconds(),
		pct(0.50).Round(10*time.Microsecond), pct(0.95).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), wrong.Load(), warmed.Load())
	if wrong.Load() > 0 {
		return fmt.Errorf("%d answers were wrong or failed", wrong.Load())
	}
	return nil
}

// review is an AdmissionReview for a pod: one the built-in policies admit,
// or (deny) a privileged one from Docker Hub. By default the pod is a
// replica of a ReplicaSet (web-…, or debug-… when denied): named by the
// API server from its generateName, with a resourceVersion of its own, as
// the replicaset-controller's pods come; distinct pods are named by the
// user and each carries a label of its own.
func review(uid, registry string, deny, distinct bool) []byte {
	container := map[string]any{"name": "app", "image": registry + "/shop/web@sha256:4c1e2a0f3b8d9e7c6a5b4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a",
		"resources":       map[string]any{"limits": map[string]any{"cpu": "100m", "memory": "64Mi"}},
		"securityContext": map[string]any{"allowPrivilegeEscalation": false}}
	spec := map[string]any{"securityContext": map[string]any{"runAsNonRoot": true}, "containers": []any{container}}
	rs := "web-7d9f8b6c5-"
	if deny {
		container["image"] = "busybox"
		container["securityContext"] = map[string]any{"privileged": true}
		spec["hostNetwork"] = true
		rs = "debug-5c6b7d8f9-"
	}
	labels := map[string]string{"app.kubernetes.io/name": "web"}
	meta := map[string]any{"namespace": "shop", "labels": labels}
	var name string
	if distinct {
		name = "web-" + uid
		labels["bench.rampart.dev/pod"] = uid
	} else {
		name = rs + generatedSuffix(uid)
		meta["generateName"] = rs
		meta["resourceVersion"] = uid
		labels["pod-template-hash"] = strings.Trim(rs[strings.Index(rs, "-")+1:], "-")
	}
	meta["name"] = name
	b, _ := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": map[string]any{
		"uid": uid, "kind": map[string]string{"group": "", "version": "v1", "kind": "Pod"},
		"resource": map[string]string{"group": "", "version": "v1", "resource": "pods"}, "namespace": "shop", "name": name,
		"operation": "CREATE", "userInfo": map[string]any{"username": "system:serviceaccount:kube-system:replicaset-controller"},
		"object": map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}}})
	return b
}

func post(c *http.Client, url, token string, body []byte) (bool, error) {
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return false, err
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("%s: %s", resp.Status, data)
	}
	var out struct {
		Response struct {
			Allowed bool `json:"allowed"`
		} `json:"response"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return false, err
	}
	return out.Response.Allowed, nil
}

// get fetches url with token and checks it answers 200.
func get(c *http.Client, url, token string) error {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, data)
	}
	return nil
}

// generatedSuffix is five characters of the API server's random-name
// alphabet derived from s, as a generated pod name ends.
func generatedSuffix(s string) string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	h := fnv.New64a()
	h.Write([]byte(s))
	n := h.Sum64()
	b := make([]byte, 5)
	for i := range b {
		b[i] = alphabet[n%uint64(len(alphabet))]
		n /= uint64(len(alphabet))
	}
	return string(b)
}
