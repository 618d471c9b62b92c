package waf_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/libinjection-go"
)

// The floor benchmarks run plain Coraza with no detection rule at all:
// the request body is parsed into ARGS as the CRS has it parsed
// (requestBodyProcessor=JSON for JSON), and one rule that never matches
// walks ARGS and ARGS_NAMES, as every CRS rule inspecting arguments does.
// What the JSON request costs here above the GET is what any rule set on
// Coraza pays for the body before inspecting it: bench/README.md compares
// it with BenchmarkServe_GET (the whole CRS on the GET) for the target
// "an 8 KB JSON body keeps half the GET rate".
func corazaFloor(b *testing.B, walkers int) coraza.WAF {
	b.Helper()
	var d strings.Builder
	d.WriteString("SecRuleEngine On\nSecRequestBodyAccess On\nSecRequestBodyLimit 13107200\n")
	d.WriteString(`SecRule REQUEST_HEADERS:Content-Type "@rx ^application/json" "id:1,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON"` + "\n")
	for i := range walkers {
		d.WriteString(`SecRule ARGS|ARGS_NAMES "@streq never-present" "id:` + string(rune('2'+i)) + `00,phase:2,pass,nolog"` + "\n")
	}
	w, err := coraza.NewWAF(coraza.NewWAFConfig().WithDirectives(d.String()))
	if err != nil {
		b.Fatal(err)
	}
	return w
}

func runFloor(b *testing.B, w coraza.WAF, method, ctype, body string) {
	b.ReportAllocs()
	b.ResetTimer()
	c0 := cpuTime()
	for b.Loop() {
		tx := w.NewTransaction()
		tx.ProcessConnection("127.0.0.1", 50000, "127.0.0.1", 8443)
		tx.ProcessURI("/search?q=hello&page=2", method, "HTTP/1.1")
		tx.AddRequestHeader("Host", "waf.bench")
		tx.AddRequestHeader("User-Agent", "wrk")
		if ctype != "" {
			tx.AddRequestHeader("Content-Type", ctype)
		}
		if it := tx.ProcessRequestHeaders(); it != nil {
			b.Fatal("interrupted")
		}
		if body != "" {
			if it, _, err := tx.WriteRequestBody([]byte(body)); it != nil || err != nil {
				b.Fatal(it, err)
			}
		}
		if it, err := tx.ProcessRequestBody(); it != nil || err != nil {
			b.Fatal(it, err)
		}
		tx.ProcessLogging()
		_ = tx.Close()
	}
	b.ReportMetric(float64((cpuTime()-c0).Microseconds())/float64(b.N), "cpu-µs/op")
}

func BenchmarkCorazaFloor_GET(b *testing.B) {
	runFloor(b, corazaFloor(b, 0), "GET", "", "")
}

func BenchmarkCorazaFloor_JSON8K(b *testing.B) {
	runFloor(b, corazaFloor(b, 0), "POST", "application/json", json8K())
}

// BenchmarkCorazaFloor_JSON8KOneRule adds one rule walking ARGS and
// ARGS_NAMES with an operator that never matches.
func BenchmarkCorazaFloor_JSON8KOneRule(b *testing.B) {
	runFloor(b, corazaFloor(b, 1), "POST", "application/json", json8K())
}

// jsonArgs returns the argument names and values Coraza's JSON body
// processor makes of body (json.items.0.id = 0, …), distinct ones once.
func jsonArgs(b *testing.B, body string) []string {
	b.Helper()
	var doc any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		b.Fatal(err)
	}
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				walk(prefix+"."+k, e)
			}
		case []any:
			for i, e := range v {
				walk(prefix+"."+strconv.Itoa(i), e)
			}
		default:
			add(prefix)
			add(fmt.Sprint(v))
		}
	}
	walk("json", doc)
	return out
}

// BenchmarkLibinjectionFloor_JSON8K runs libinjection's SQLi and XSS
// detectors once on each distinct argument name and value of the 8 KB
// JSON document: what CRS rules 942100 and 941100 (paranoia level 1, on
// every argument name and value) need per request however the rules are
// scheduled, unless verdicts are remembered across requests.
func BenchmarkLibinjectionFloor_JSON8K(b *testing.B) {
	args := jsonArgs(b, json8K())
	b.ResetTimer()
	var sqli, xss time.Duration
	for b.Loop() {
		c0 := cpuTime()
		for _, a := range args {
			if ok, _ := libinjection.IsSQLi(a); ok {
				b.Fatalf("%q is SQLi", a)
			}
		}
		c1 := cpuTime()
		for _, a := range args {
			if libinjection.IsXSS(a) {
				b.Fatalf("%q is XSS", a)
			}
		}
		sqli, xss = sqli+c1-c0, xss+cpuTime()-c1
	}
	b.ReportMetric(float64(len(args)), "strings")
	b.ReportMetric(float64(sqli.Microseconds())/float64(b.N), "sqli-cpu-µs/op")
	b.ReportMetric(float64(xss.Microseconds())/float64(b.N), "xss-cpu-µs/op")
}
