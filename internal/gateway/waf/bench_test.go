package waf_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/gateway/waf"
)

// json8K is a valid JSON document of about 8 KB, the body bench/gateway.sh
// posts.
func json8K() string {
	type item struct {
		ID    int      `json:"id"`
		Name  string   `json:"name"`
		Tags  []string `json:"tags"`
		Price float64  `json:"price"`
	}
	var items []item
	for i := range 105 {
		items = append(items, item{ID: i, Name: fmt.Sprintf("item %d", i), Tags: []string{"alpha", "beta"}, Price: float64(i) * 1.5})
	}
	b, _ := json.Marshal(map[string]any{"items": items})
	return string(b)
}

func benchWAF(b *testing.B) *waf.WAF {
	b.Helper()
	w, err := waf.NewEngine(waf.Options{}).For(waf.Settings{Mode: waf.Block, Paranoia: 1})
	if err != nil {
		b.Fatal(err)
	}
	return w
}

var okBackend = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"ok":true}`)
})

func deny(w http.ResponseWriter, _ *http.Request, status int) { w.WriteHeader(status) }

func runBench(b *testing.B, w *waf.WAF, newReq func() *http.Request) {
	b.ReportAllocs()
	b.ResetTimer()
	c0 := cpuTime()
	for b.Loop() {
		r := newReq()
		rec := httptest.NewRecorder()
		if out := w.Serve(rec, r, "bench", okBackend, deny); out.Blocked || rec.Code != http.StatusOK {
			b.Fatalf("benign request blocked: %+v (status %d)", out, rec.Code)
		}
	}
	b.ReportMetric(float64((cpuTime()-c0).Microseconds())/float64(b.N), "cpu-µs/op")
}

// cpuTime is the process's user and system CPU time: per request it
// holds on a busy machine, where wall time does not.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkServe_GET is the benign GET with a query string of
// bench/gateway.sh through the CRS at PL1 in block mode.
func BenchmarkServe_GET(b *testing.B) {
	w := benchWAF(b)
	runBench(b, w, func() *http.Request {
		r := httptest.NewRequest(http.MethodGet, "http://waf.bench/search?q=hello&page=2", nil)
		r.Header.Set("User-Agent", "wrk")
		r.Header.Set("Accept", "*/*")
		return r
	})
}

// BenchmarkServe_JSON8K posts the 8 KB JSON document of bench/gateway.sh.
func BenchmarkServe_JSON8K(b *testing.B) {
	w := benchWAF(b)
	body := json8K()
	runBench(b, w, func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "http://waf.bench/search?q=hello&page=2", strings.NewReader(body))
		r.Header.Set("User-Agent", "wrk")
		r.Header.Set("Content-Type", "application/json")
		return r
	})
}

// TestServeConcurrent sends benign requests and SQL injections through one
// WAF from several goroutines at once: the @rx operator's compiled
// patterns (Go's regexp and RE2) are shared between transactions.
func TestServeConcurrent(t *testing.T) {
	w, err := waf.NewEngine(waf.Options{}).For(waf.Settings{Mode: waf.Block, Paranoia: 1})
	if err != nil {
		t.Fatal(err)
	}
	const body = `{"name": "widget", "tags": ["alpha", "beta"], "price": 1.5}`
	errs := make(chan error, 64)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 6 {
				var r *http.Request
				attack := (g+i)%2 == 1
				switch {
				case attack:
					r = httptest.NewRequest(http.MethodGet, "http://waf.test/search?q="+url.QueryEscape("1' UNION SELECT password FROM users--"), nil)
				case i%3 == 0:
					r = httptest.NewRequest(http.MethodPost, "http://waf.test/items", strings.NewReader(body))
					r.Header.Set("Content-Type", "application/json")
				default:
					r = httptest.NewRequest(http.MethodGet, "http://waf.test/search?q=hello&page=2", nil)
				}
				r.Header.Set("User-Agent", "concurrency-test")
				out := w.Serve(httptest.NewRecorder(), r, "t", okBackend, deny)
				if out.Blocked != attack {
					errs <- fmt.Errorf("goroutine %d request %d (attack %v): blocked %v, rule %d", g, i, attack, out.Blocked, out.RuleID)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
