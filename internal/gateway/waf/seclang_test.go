package waf

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

func TestSplitVars(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"ARGS", []string{"ARGS"}},
		{"ARGS|ARGS_NAMES|!ARGS:foo", []string{"ARGS", "ARGS_NAMES", "!ARGS:foo"}},
		{"REQUEST_COOKIES|!REQUEST_COOKIES:/^(?:a|b)$/|ARGS", []string{"REQUEST_COOKIES", "!REQUEST_COOKIES:/^(?:a|b)$/", "ARGS"}},
		{`ARGS:/a\/|b/|XML:/*`, []string{`ARGS:/a\/|b/`, "XML:/*"}},
		{"XML:/*|XML://@*|ARGS", []string{"XML:/*", "XML://@*", "ARGS"}},
		{"ARGS:'/x|y/'|&ARGS", []string{"ARGS:'/x|y/'", "&ARGS"}},
	} {
		if got := splitVars(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("splitVars(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestReadSecLang(t *testing.T) {
	root := fstest.MapFS{
		"rules/a.conf": {Data: []byte(`SecRule ARGS|REQUEST_HEADERS:User-Agent "@rx (?i)a\"b,c" \
    "id:10,\
    phase:2,\
    t:none,t:urlDecodeUni,t:lowercase,\
    msg:'a, b: c',\
    chain"
    SecRule TX:x "@eq 1" "t:none"
SecRule ARGS "!@rx x" "id:11,phase:1,skip:1"
SecRule ARGS "x" "id:12,phase:1"
SecMarker END
`)},
	}
	cfg, err := readSecLang("Include rules/*.conf\nSecRuleUpdateTargetById 12 \"ARGS_NAMES\"\nSecRuleUpdateTargetById 10 \"!ARGS:foo\"\n", root)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.rules) != 5 {
		t.Fatalf("read %d rules, want 5: %+v", len(cfg.rules), cfg.rules)
	}
	r := cfg.rules[0]
	if r.id != 10 || r.phase != 2 || r.op != "rx" || r.arg != `(?i)a"b,c` || !slices.Equal(r.trans, []string{"urldecodeuni", "lowercase"}) || r.vars != "ARGS|REQUEST_HEADERS:User-Agent" {
		t.Errorf("first rule read as %+v", r)
	}
	if !cfg.rules[1].child || cfg.rules[1].op != "eq" {
		t.Errorf("chain child read as %+v", cfg.rules[1])
	}
	if r := cfg.rules[2]; !r.negated || r.skip != 1 || r.phase != 1 {
		t.Errorf("negated rule read as %+v", r)
	}
	if r := cfg.rules[3]; r.op != "rx" || r.arg != "x" {
		t.Errorf("implicit @rx read as %+v", r)
	}
	if cfg.rules[4].kind != secMarkerKind {
		t.Errorf("marker read as %+v", cfg.rules[4])
	}
	if !cfg.updated[12] || cfg.updated[10] {
		t.Errorf("updated rules %v, want 12 (a target added) and not 10 (one excluded)", cfg.updated)
	}
	rx := []opRecord{rxOp(t, `(?i)a"b,c`), rxOp(t, "x"), rxOp(t, "x")}
	f, err := buildFilter(cfg, rx)
	if err != nil {
		t.Fatal(err)
	}
	// 10 is filtered; 11 is negated; 12 is counted by 11's skip and
	// widened by an update.
	if len(f.phase1) != 0 || len(f.phase2) != 1 || f.phase2[0].id != 10 {
		t.Errorf("filter %+v, want only rule 10 in phase 2", f)
	}
	if _, err := buildFilter(cfg, rx[:2]); err == nil {
		t.Error("filter built with fewer compiled operators than rules")
	}
	if _, err := buildFilter(cfg, []opRecord{rxOp(t, "other"), rx[1], rx[2]}); err == nil {
		t.Error("filter built although a compiled pattern differs from the text")
	}
	cfg, err = readSecLang(`SecDefaultAction "phase:2,log,t:lowercase"`, root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := buildFilter(cfg, nil); err == nil {
		t.Error("filter built under default transformations")
	}
}

func rxOp(t *testing.T, arg string) opRecord {
	t.Helper()
	op, err := compileRx(plugintypes.OperatorOptions{Arguments: arg})
	if err != nil {
		t.Fatal(err)
	}
	return opRecord{name: "rx", arg: arg, op: op}
}

// FuzzReadSecLang: any text reads without panicking, and splitVars only
// cuts at "|".
func FuzzReadSecLang(f *testing.F) {
	f.Add(`SecRule ARGS|!ARGS:/a|b/ "@rx x" "id:1,phase:2,t:none,t:lowercase,chain,msg:'a,b'"` + "\n" + `SecRule TX:a "@eq 1" ""`)
	f.Add("SecAction \"id:2,skip:3\"\nSecMarker X\nSecRuleUpdateTargetById 1-3 \"ARGS\"\nSecRuleUpdateTargetByTag 'x' \"!ARGS\"")
	f.Add("SecRule A \"\\\"\" \"id:'3',t:'x\\,y'\"\n`\nSecDataset x `\n`")
	f.Add("Include x.conf\nSecRule \\\n ARGS \"x\"")
	root := fstest.MapFS{"x.conf": {Data: []byte("Include x.conf\n")}}
	f.Fuzz(func(t *testing.T, text string) {
		cfg, err := readSecLang(text, root)
		if err == nil {
			for _, r := range cfg.rules {
				if parts := splitVars(r.vars); strings.Join(parts, "|") != r.vars {
					t.Fatalf("splitVars(%q) = %q", r.vars, parts)
				}
			}
			_, _ = buildFilter(cfg, nil)
		}
	})
}

func TestDeadRules(t *testing.T) {
	const base = `SecAction "id:900000,phase:1,nolog,pass,setvar:tx.blocking_paranoia_level=1"
SecRule &TX:blocking_paranoia_level "@eq 0" "id:901120,phase:1,pass,nolog,tag:'OWASP_CRS',setvar:tx.blocking_paranoia_level=1"
SecRule &TX:detection_paranoia_level "@eq 0" "id:901125,phase:1,pass,nolog,tag:'OWASP_CRS',setvar:tx.detection_paranoia_level=%{TX.blocking_paranoia_level}"
SecRule TX:DETECTION_PARANOIA_LEVEL "@lt 1" "id:100011,phase:1,pass,nolog,tag:'OWASP_CRS',skipAfter:END-100"
SecRule ARGS "@rx a" "id:100100,phase:1,block,tag:'OWASP_CRS'"
SecRule ARGS "@rx b" "id:100101,phase:2,block,tag:'OWASP_CRS'"
SecRule TX:DETECTION_PARANOIA_LEVEL "@lt 2" "id:100013,phase:1,pass,nolog,tag:'OWASP_CRS',skipAfter:END-100"
SecRule ARGS "@rx c" "id:100200,phase:1,block,tag:'OWASP_CRS'"
SecRule ARGS "@rx d" "id:100201,phase:2,block,tag:'OWASP_CRS'"
SecRule ARGS "@rx e" "id:100202,phase:1,block,tag:'OWASP_CRS',chain"
SecRule ARGS "@rx f" ""
`
	for _, tc := range []struct {
		name  string
		extra string
		pl    int
		want  []int
	}{
		{"level 1", "SecMarker END-100\n", 1, []int{100011, 100013, 100200, 100202}},
		{"level 2", "SecMarker END-100\n", 2, []int{100011, 100013}},
		{"no marker", "", 1, nil},
		{"guard removed by id", "SecMarker END-100\nSecRuleRemoveById 100013\n", 1, nil},
		{"guard removed by ctl", "SecMarker END-100\nSecAction \"id:5,phase:1,pass,ctl:ruleRemoveById=100013\"\n", 1, nil},
		{"removal by a tag all share", "SecMarker END-100\nSecAction \"id:5,phase:1,pass,ctl:ruleRemoveByTag=OWASP_CRS\"\n", 1, []int{100011, 100013, 100200, 100202}},
		{"removal by tag", "SecMarker END-100\nSecRuleRemoveByTag attack\n", 1, nil},
		{"level set elsewhere", "SecMarker END-100\nSecAction \"id:6,phase:1,pass,setvar:tx.detection_paranoia_level=3\"\n", 1, nil},
		{"detection level never set", "SecMarker END-100\nSecRuleRemoveById 901125\n", 1, nil},
		{"guard narrowed", "SecMarker END-100\nSecRuleUpdateTargetById 100013 \"!TX:DETECTION_PARANOIA_LEVEL\"\n", 1, nil},
		{"guard narrowed at run time", "SecMarker END-100\nSecAction \"id:7,phase:1,pass,ctl:ruleRemoveTargetById=100013;TX:DETECTION_PARANOIA_LEVEL\"\n", 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := readSecLang(base+tc.extra, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := deadRules(cfg, tc.pl); !slices.Equal(got, tc.want) {
				t.Errorf("deadRules = %v, want %v", got, tc.want)
			}
		})
	}
	// A rule a skip:N counts is never pruned.
	cfg, err := readSecLang(`SecAction "id:900000,phase:1,nolog,pass,setvar:tx.blocking_paranoia_level=1"
SecRule &TX:blocking_paranoia_level "@eq 0" "id:901120,phase:1,pass,nolog,setvar:tx.blocking_paranoia_level=1"
SecRule &TX:detection_paranoia_level "@eq 0" "id:901125,phase:1,pass,nolog,setvar:tx.detection_paranoia_level=%{TX.blocking_paranoia_level}"
SecRule TX:DETECTION_PARANOIA_LEVEL "@lt 2" "id:100013,phase:1,pass,nolog,skipAfter:END-100"
SecRule ARGS "@rx c" "id:100200,phase:1,pass,skip:1"
SecRule ARGS "@rx d" "id:100201,phase:1,block"
SecMarker END-100
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := deadRules(cfg, 1); len(got) != 0 {
		t.Errorf("pruned %v inside a skip window", got)
	}
}
