package waf

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/corazawaf/coraza/v3"
)

// transformed returns t(v) for each transformation t the rule filter
// knows, as Coraza computes it: one rule per transformation matches every
// value of ARGS:v and reports the transformed value it matched.
func transformedByCoraza(t testing.TB) func(v string) map[string]string {
	t.Helper()
	var b strings.Builder
	b.WriteString("SecRuleEngine On\nSecRequestBodyAccess On\n")
	names := map[int]string{}
	id := 1000
	for name := range steps {
		id++
		names[id] = name
		fmt.Fprintf(&b, "SecRule ARGS_GET:v \"@rx ^\" \"id:%d,phase:1,pass,log,t:none,t:%s\"\n", id, name)
	}
	registerOperators()
	w, err := coraza.NewWAF(coraza.NewWAFConfig().WithDirectives(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return func(v string) map[string]string {
		tx := w.NewTransaction()
		defer tx.Close()
		tx.ProcessURI("/?v="+url.QueryEscape(v), http.MethodGet, "HTTP/1.1")
		tx.ProcessRequestHeaders()
		out := map[string]string{}
		for _, m := range tx.MatchedRules() {
			if name, ok := names[m.Rule().ID()]; ok && len(m.MatchedDatas()) > 0 {
				out[name] = m.MatchedDatas()[0].Value()
			}
		}
		return out
	}
}

// FuzzClosures checks each transformation's step against Coraza's
// transformation: for an ASCII value, the bytes of the transformed value
// lie in the closure of the value's bytes, and a value without the
// step's identity bytes comes out unchanged.
func FuzzClosures(f *testing.F) {
	for _, s := range []string{"", "a b", "A%41+", "&lt;x&#39;", `\x41\u0042`, "/a/../b//c/./", `C:\win\..\x`,
		"x/*c*/y", "--#", "a/./b", "a/b/", "a.b /c", "c:x", "a  b", " a", "&amp;x", "&x", "..", "./a", "a/.", "SeLeCt\t\n1", "a\x00b", "\"'^,;()/", "&amp", "%u0041%uff0e", "  trim  ", "<!-- x -->"} {
		f.Add(s)
	}
	tr := transformedByCoraza(f)
	f.Fuzz(func(t *testing.T, v string) {
		in, ascii := alphabetOf(v)
		if !ascii || !utf8.ValidString(v) {
			return
		}
		for name, out := range tr(v) {
			st := steps[name]
			if ident := st.ident.or(st.trig); in[0]&ident[0] == 0 && in[1]&ident[1] == 0 && out != v {
				t.Fatalf("t:%s(%q) = %q, but the value has none of the bytes that change it", name, v, out)
			}
			if st.same != nil && st.same(v) && out != v {
				t.Fatalf("t:%s(%q) = %q, but its same predicate says it is unchanged", name, v, out)
			}
			set, ok := closeOver(in, []step{st})
			if !ok {
				continue
			}
			got, ascii := alphabetOf(out)
			if !ascii {
				t.Fatalf("t:%s(%q) = %q has non-ASCII bytes, closure allowed only %v", name, v, out, set)
			}
			if got[0]&^set[0] != 0 || got[1]&^set[1] != 0 {
				t.Fatalf("t:%s(%q) = %q has bytes outside its closure", name, v, out)
			}
		}
	})
}

// TestRuleFilterRemovesRules: at paranoia level 1 pruning takes out the
// rules of the higher levels, on benign requests the filter takes most of
// the others out of phases 1 and 2, and an attack keeps the rules that
// detect it.
func TestRuleFilterRemovesRules(t *testing.T) {
	w, err := NewEngine(Options{}).For(Settings{Mode: Block, Paranoia: 1})
	if err != nil {
		t.Fatal(err)
	}
	removed := map[int]int{}
	observeFilter = func(id, n int) { removed[id] += n }
	t.Cleanup(func() { observeFilter = nil })
	serve := func(target, body string) Outcome {
		var r *http.Request
		if body == "" {
			r = httptest.NewRequest(http.MethodGet, target, nil)
		} else {
			r = httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
		}
		r.Header.Set("User-Agent", "rampart-test")
		return w.Serve(httptest.NewRecorder(), r, "t", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}),
			func(w http.ResponseWriter, _ *http.Request, s int) { w.WriteHeader(s) })
	}
	if out := serve("http://app.test/search?q=hello&page=2", ""); out.Blocked {
		t.Fatalf("benign GET blocked: %+v", out)
	}
	if w.Pruned() < 250 {
		t.Errorf("pruning took out %d rules at paranoia level 1, want the guards and the rules of levels 2 to 4", w.Pruned())
	}
	if removed[ruleFilterID1]+removed[ruleFilterID2] < 90 {
		t.Errorf("benign GET: the filter removed %v rules (phase 1, phase 2), want at least 90 of %d", removed, w.Filterable())
	}
	clear(removed)
	if out := serve("http://app.test/items", `{"items":[{"id":1,"name":"item 1","tags":["alpha","beta"]}]}`); out.Blocked {
		t.Fatalf("benign JSON blocked: %+v", out)
	}
	if removed[ruleFilterID2] < 70 {
		t.Errorf("benign JSON: the filter removed %d phase-2 rules, want at least 70", removed[ruleFilterID2])
	}
	out := serve("http://app.test/search?q="+url.QueryEscape("1' UNION SELECT password FROM users--"), "")
	if !out.Blocked {
		t.Fatalf("SQL injection passed: %+v", out)
	}
	found := false
	for _, id := range out.Rules {
		found = found || id/1000 == 942
	}
	if !found {
		t.Errorf("SQL injection blocked without a 942xxx rule: %v", out.Rules)
	}
}

// TestRuleFilterSlotsDropped: compiled rule sets leave no entry in the
// filter registry (a gateway recompiling on route changes would grow it).
func TestRuleFilterSlotsDropped(t *testing.T) {
	e := NewEngine(Options{})
	for pl := 1; pl <= 2; pl++ {
		w, err := e.For(Settings{Mode: Block, Paranoia: pl})
		if err != nil {
			t.Fatal(err)
		}
		if w.Filterable() == 0 {
			t.Fatalf("paranoia %d: no rule filterable", pl)
		}
	}
	n := 0
	filters.Range(func(any, any) bool { n++; return true })
	if n != 0 {
		t.Errorf("%d filter slots left after compiling", n)
	}
}

// TestPruneWithExclusions: a route excluding rules pruning also removes
// still compiles; excluding a guard turns pruning off (its rules would
// then run).
func TestPruneWithExclusions(t *testing.T) {
	for _, tc := range []struct {
		exclude []string
		pruned  bool
	}{
		{[]string{"942430", "941100-941999"}, true}, // a level-2 rule and a range
		{[]string{"920013"}, false},                 // the 920 file's "@lt 2" guard
	} {
		w, err := NewEngine(Options{}).For(Settings{Mode: Block, Paranoia: 1, ExcludeRules: tc.exclude})
		if err != nil {
			t.Fatalf("exclude %v: %v", tc.exclude, err)
		}
		if (w.Pruned() > 0) != tc.pruned {
			t.Errorf("exclude %v: %d rules pruned, want pruning %v", tc.exclude, w.Pruned(), tc.pruned)
		}
	}
}
