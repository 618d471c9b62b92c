package waf_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/gateway/waf"
	"github.com/rampartsec/rampart/internal/gateway/waf/ftw"
	"github.com/rampartsec/rampart/internal/testenv"
)

// detectAllDirectives run every CRS rule on every request (paranoia level
// 4, detection only), with the regression suite's limits.
const detectAllDirectives = `SecAction "id:900005,phase:1,nolog,pass,ctl:ruleEngine=DetectionOnly,ctl:ruleRemoveById=910000,setvar:tx.blocking_paranoia_level=4,setvar:tx.crs_validate_utf8_encoding=1,setvar:tx.arg_name_length=100,setvar:tx.arg_length=400,setvar:tx.total_arg_length=64000,setvar:tx.max_num_args=255,setvar:tx.max_file_size=64100,setvar:tx.combined_file_sizes=65535"`

// crsRequests returns the requests of the CRS regression suite that
// net/http can read, with their titles.
func crsRequests(t *testing.T) ([]string, [][]byte) {
	t.Helper()
	dir := filepath.Join(testenv.GoModule(t, "github.com/corazawaf/coraza-coreruleset/v4", "v"+waf.CRSVersion), "tests")
	files, err := ftw.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var titles []string
	var raws [][]byte
	for _, f := range files {
		for _, tt := range f.Tests {
			for _, st := range tt.Stages {
				titles = append(titles, f.Title(tt))
				raws = append(raws, st.Input.Request())
			}
		}
	}
	return titles, raws
}

// TestRuleFilterChangesNoVerdict sends every request of the CRS
// regression suite through two WAFs of the same settings, one with
// pruning and the rule filter and one without, and wants the same verdict
// and the same logged matches from both: they only take out rules that
// cannot run or cannot match.
func TestRuleFilterChangesNoVerdict(t *testing.T) {
	if testing.Short() {
		t.Skip("replays the CRS regression requests twice")
	}
	titles, raws := crsRequests(t)
	configs := []struct {
		name  string
		extra string
		s     waf.Settings
	}{
		{"PL4-detect", detectAllDirectives, waf.Settings{Mode: waf.Block, Paranoia: 4}},
		{"PL1-block", "", waf.Settings{Mode: waf.Block, Paranoia: 1}},
		{"PL2-detect", "", waf.Settings{Mode: waf.Detect, Paranoia: 2}},
	}
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			with, err := waf.NewEngine(waf.Options{ExtraDirectives: c.extra}).For(c.s)
			if err != nil {
				t.Fatal(err)
			}
			without, err := waf.NewEngine(waf.Options{ExtraDirectives: c.extra, NoRuleFilter: true}).For(c.s)
			if err != nil {
				t.Fatal(err)
			}
			if with.Filterable() < 80 || without.Filterable() != 0 || without.Pruned() != 0 {
				t.Fatalf("filterable rules: %d with the filter, %d without (%d pruned)", with.Filterable(), without.Filterable(), without.Pruned())
			}
			compared, differ := 0, 0
			for i, raw := range raws {
				a, okA := serveRaw(with, raw)
				b, okB := serveRaw(without, raw)
				if !okA || !okB {
					continue
				}
				compared++
				if a.Blocked != b.Blocked || a.RuleID != b.RuleID || !slices.Equal(sorted(a.Rules), sorted(b.Rules)) {
					differ++
					if differ <= 10 {
						t.Errorf("%s: with the filter blocked=%v rule %d matched %v; without blocked=%v rule %d matched %v",
							titles[i], a.Blocked, a.RuleID, sorted(a.Rules), b.Blocked, b.RuleID, sorted(b.Rules))
					}
				}
			}
			if compared < 4000 {
				t.Fatalf("compared only %d of %d requests", compared, len(raws))
			}
			if differ > 0 {
				t.Fatalf("%d of %d requests differ", differ, compared)
			}
			t.Logf("%d requests, same verdicts and matches", compared)
		})
	}
}

func sorted(ids []int) []int {
	s := slices.Clone(ids)
	slices.Sort(s)
	return s
}

// serveRaw runs one raw HTTP request through w, in front of a backend
// answering a short text; false when net/http cannot read the request.
func serveRaw(w *waf.WAF, raw []byte) (waf.Outcome, bool) {
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return waf.Outcome{}, false
	}
	r.RemoteAddr = "192.0.2.10:40000"
	r.RequestURI = r.URL.RequestURI()
	if r.URL.Opaque != "" || strings.HasPrefix(string(raw), r.Method+" http") {
		r.RequestURI = r.URL.String()
	}
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok\n")
	})
	out := w.Serve(httptest.NewRecorder(), r, "t", backend, func(w http.ResponseWriter, _ *http.Request, status int) { w.WriteHeader(status) })
	return out, true
}

// FuzzRuleFilter puts a value in the query, a header, a cookie, a
// form or JSON body and the path, and wants the same verdict and matches
// with and without the rule filter.
func FuzzRuleFilter(f *testing.F) {
	for _, s := range []string{"hello", "1' OR '1'='1", "<script>alert(1)</script>", "%27%20or%201=1", "&lt;svg onload=x&gt;",
		`\u003cscript`, "../../etc/passwd", "${jndi:ldap://x}", "a+b", "; cat /etc/passwd", "/*!50000select*/", "x\x00y"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	with, err := waf.NewEngine(waf.Options{ExtraDirectives: detectAllDirectives}).For(waf.Settings{Mode: waf.Block, Paranoia: 4})
	if err != nil {
		f.Fatal(err)
	}
	without, err := waf.NewEngine(waf.Options{ExtraDirectives: detectAllDirectives, NoRuleFilter: true}).For(waf.Settings{Mode: waf.Block, Paranoia: 4})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, v string, jsonBody bool) {
		q := url.QueryEscape(v)
		var body, ctype string
		if jsonBody {
			b, _ := json.Marshal(map[string]any{"a": v, "list": []string{v}})
			body, ctype = string(b), "application/json"
		} else {
			body, ctype = "f="+q, "application/x-www-form-urlencoded"
		}
		raw := "POST /p/" + url.PathEscape(v) + "?q=" + q + " HTTP/1.1\r\nHost: app.test\r\nUser-Agent: " + headerSafe(v) +
			"\r\nCookie: c=" + headerSafe(v) + "\r\nContent-Type: " + ctype + "\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
		a, okA := serveRaw(with, []byte(raw))
		b, okB := serveRaw(without, []byte(raw))
		if okA != okB {
			t.Fatalf("request read by one WAF only")
		}
		if a.Blocked != b.Blocked || a.RuleID != b.RuleID || !slices.Equal(sorted(a.Rules), sorted(b.Rules)) {
			t.Fatalf("%q: with the filter blocked=%v rule %d matched %v; without blocked=%v rule %d matched %v",
				v, a.Blocked, a.RuleID, sorted(a.Rules), b.Blocked, b.RuleID, sorted(b.Rules))
		}
	})
}

// headerSafe drops the bytes a header value cannot carry.
func headerSafe(v string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, v)
}

// TestRuleFilterEdgeCases are configurations where pruning or the filter
// once changed a verdict (found in two reviews): a route excluding the
// rule a skip:1 would eat, exclusions of the paranoia set-up, custom rules
// reading the RULE collection, a header key with a "/", updated actions,
// rules that jump over or narrow the set-up, removing every marker, a
// rule taking the filter's id.
func TestRuleFilterEdgeCases(t *testing.T) {
	get := func(target string, headers ...string) string {
		return "GET " + target + " HTTP/1.1\r\nHost: app.test\r\nUser-Agent: curl/8\r\nAccept: */*\r\n" + strings.Join(headers, "") + "\r\n"
	}
	post := func(body string) string {
		return "POST /api HTTP/1.1\r\nHost: app.test\r\nUser-Agent: curl/8\r\nAccept: */*\r\nContent-Type: application/json\r\nContent-Length: " +
			strconv.Itoa(len(body)) + "\r\n\r\n" + body
	}
	const sqli = "/?id=1%20union%20select%20a%20from%20b&x=%2541"
	for _, tc := range []struct {
		name  string
		extra string
		s     waf.Settings
		raw   string
	}{
		{"skip window after an exclusion, PL4", "", waf.Settings{Mode: waf.Block, Paranoia: 4, ExcludeRules: []string{"920540"}}, post(`{"a":"%41","b":"%42"}`)},
		{"skip window after an exclusion, PL1", "", waf.Settings{Mode: waf.Block, Paranoia: 1, ExcludeRules: []string{"920540"}}, post(`{"a":"x\u0001y","b":"%41%41"}`)},
		{"detection level never set", "", waf.Settings{Mode: waf.Block, Paranoia: 1, ExcludeRules: []string{"901125"}}, get(sqli)},
		{"Rampart's level setting excluded", "", waf.Settings{Mode: waf.Block, Paranoia: 3, ExcludeRules: []string{"900000"}}, get(sqli)},
		{"RULE collection read", `SecRule ARGS "@rx ^zzz$" "id:100,phase:2,pass,nolog,msg:'secret'"
SecRule ARGS "@rx ." "id:101,phase:2,pass,nolog,setvar:'tx.m=%{rule.msg}'"
SecRule TX:m "@streq secret" "id:102,phase:2,deny,status:403,log,msg:'leak'"`, waf.Settings{Mode: waf.Block, Paranoia: 1}, get("/?q=a")},
		{"key with a slash", `SecRule REQUEST_HEADERS:x/y "@rx evil" "id:100,phase:1,deny,status:403,log,msg:'x'"`,
			waf.Settings{Mode: waf.Block, Paranoia: 1}, get("/", "X-Test: evil\r\n")},
		{"actions updated: a paranoia level", `SecRuleUpdateActionById 900110 "setvar:tx.blocking_paranoia_level=4"`, waf.Settings{Mode: waf.Block, Paranoia: 1}, get("/?x=%2541&y=%2542")},
		{"actions updated: a skip", `SecRule REQUEST_HEADERS:X-Skip "@streq 1" "id:100,phase:2,pass,nolog"
SecRule ARGS "@rx zzzq" "id:101,phase:2,pass,log,msg:'a'"
SecRule ARGS "@rx ." "id:102,phase:2,pass,log,msg:'b'"
SecRuleUpdateActionById 100 "skip:1"`, waf.Settings{Mode: waf.Block, Paranoia: 1}, get("/?q=a", "X-Skip: 1\r\n")},
		{"level set through a macro", "SecAction \"id:100,phase:1,pass,nolog,setvar:tx.x=paranoia\"\nSecAction \"id:101,phase:1,pass,nolog,setvar:tx.detection_%{tx.x}_level=4\"", waf.Settings{Mode: waf.Block, Paranoia: 1}, get(sqli)},
		{"skipAfter over the set-up", `SecRule REQUEST_HEADERS:X-Internal "@streq 1" "id:100,phase:1,pass,nolog,skipAfter:END-SAMPLING"`, waf.Settings{Mode: waf.Block, Paranoia: 1}, get(sqli, "X-Internal: 1\r\n")},
		{"allow:phase before the set-up", `SecRule REQUEST_HEADERS:X-Internal "@streq 1" "id:100,phase:1,nolog,allow:phase"`, waf.Settings{Mode: waf.Block, Paranoia: 1}, get(sqli, "X-Internal: 1\r\n")},
		{"set-up rule narrowed at run time", `SecAction "id:100,phase:1,pass,nolog,ctl:ruleRemoveTargetById=901120;TX:blocking_paranoia_level"`,
			waf.Settings{Mode: waf.Block, Paranoia: 3}, get("/?x=%2541&y=%2542")},
		{"every marker removed at run time", `SecRule REQUEST_HEADERS:X-Internal "@streq 1" "id:100,phase:2,pass,nolog,ctl:ruleRemoveById=0-10"`, waf.Settings{Mode: waf.Block, Paranoia: 1}, get(sqli, "X-Internal: 1\r\n")},
		{"a rule with the filter's id", `SecRule ARGS "@rx zzzq" "id:99001,phase:2,pass,log,msg:'a'"`, waf.Settings{Mode: waf.Block, Paranoia: 1}, get("/?q=a")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			with, err := waf.NewEngine(waf.Options{ExtraDirectives: tc.extra}).For(tc.s)
			if err != nil {
				t.Fatal(err)
			}
			without, err := waf.NewEngine(waf.Options{ExtraDirectives: tc.extra, NoRuleFilter: true}).For(tc.s)
			if err != nil {
				t.Fatal(err)
			}
			a, okA := serveRaw(with, []byte(tc.raw))
			b, okB := serveRaw(without, []byte(tc.raw))
			if !okA || !okB {
				t.Fatal("request not read")
			}
			if a.Blocked != b.Blocked || a.RuleID != b.RuleID || !slices.Equal(sorted(a.Rules), sorted(b.Rules)) {
				t.Errorf("with pruning (%d rules) and the filter (%d): blocked=%v rule %d matched %v; without: blocked=%v rule %d matched %v",
					with.Pruned(), with.Filterable(), a.Blocked, a.RuleID, sorted(a.Rules), b.Blocked, b.RuleID, sorted(b.Rules))
			}
		})
	}
}

// TestRepeatedHeaderValues: a rule sees each value of a repeated header
// transformed from that value. Coraza's transformation cache tells values
// apart by the address of their name, so the WAF hands each value its own
// copy of the name; with one shared name a rule missed "X-A: Evil" next to
// "X-A: good" about one time in ten.
func TestRepeatedHeaderValues(t *testing.T) {
	const extra = `SecRule REQUEST_HEADERS "@rx zzzz" "id:101,phase:1,pass,log,msg:'never',t:none,t:lowercase"
SecRule REQUEST_HEADERS "@rx ^evil$" "id:102,phase:1,pass,log,msg:'evil',t:none,t:lowercase"`
	raw := "GET / HTTP/1.1\r\nHost: app.test\r\nUser-Agent: curl/8\r\nX-A: Evil\r\nX-A: good\r\n\r\n"
	for _, noFilter := range []bool{true, false} {
		w, err := waf.NewEngine(waf.Options{ExtraDirectives: extra, NoRuleFilter: noFilter}).For(waf.Settings{Mode: waf.Detect, Paranoia: 1})
		if err != nil {
			t.Fatal(err)
		}
		missed := 0
		for range 300 {
			out, ok := serveRaw(w, []byte(raw))
			if !ok {
				t.Fatal("request not read")
			}
			if !slices.Contains(out.Rules, 102) {
				missed++
			}
		}
		if missed > 0 {
			t.Errorf("filter off %v: rule 102 missed the repeated header's value in %d of 300 requests", noFilter, missed)
		}
	}
}
