package waf

import (
	"regexp"
	"strconv"
	"testing"

	re2 "github.com/wasilibs/go-re2"
)

// benignValues are what a benign request gives the CRS patterns: short
// argument names and values, header values.
var benignValues = []string{"hello", "2", "q", "page", "item 24", "alpha", "61.5", "json.items.24.tags.1",
	"application/json", "waf.bench", "*/*", "gzip, deflate, br",
	"mozilla/5.0 (x11; linux x86_64) applewebkit/537.36 (khtml, like gecko) chrome/120.0 safari/537.36"}

// BenchmarkRx runs every @rx pattern of the CRS on benign values: Go's
// regexp alone, RE2 alone, and Rampart's operator (prefilter, then RE2
// for programs of re2MinInst instructions or more, Go's regexp below).
func BenchmarkRx(b *testing.B) {
	patterns := crsPatterns(b)
	b.Run("regexp", func(b *testing.B) {
		var res []*regexp.Regexp
		for _, p := range patterns {
			res = append(res, regexp.MustCompile("(?sm)"+p))
		}
		b.ResetTimer()
		for b.Loop() {
			for _, re := range res {
				for _, v := range benignValues {
					re.MatchString(v)
				}
			}
		}
	})
	b.Run("re2", func(b *testing.B) {
		var res []*re2.Regexp
		for _, p := range patterns {
			res = append(res, re2.MustCompile("(?sm)"+p))
		}
		b.ResetTimer()
		for b.Loop() {
			for _, re := range res {
				for _, v := range benignValues {
					re.MatchString(v)
				}
			}
		}
	})
	b.Run("operator", func(b *testing.B) {
		ops := rxOps(b, patterns)
		tx := &captureTx{}
		b.ResetTimer()
		for b.Loop() {
			for _, o := range ops {
				for _, v := range benignValues {
					o.Evaluate(tx, v)
				}
			}
		}
	})
}

// jsonArgs are the ARGS and ARGS_NAMES values Coraza's JSON body
// processor makes of the 8 KB document bench/gateway.sh posts (see
// json8K in bench_test.go): about 633 names and as many values.
func jsonArgs() []string {
	var out []string
	add := func(k, v string) { out = append(out, k, v) }
	add("json.items", "105")
	for i := range 105 {
		p := "json.items." + strconv.Itoa(i)
		add(p+".id", strconv.Itoa(i))
		add(p+".name", "item "+strconv.Itoa(i))
		add(p+".tags", "2")
		add(p+".tags.0", "alpha")
		add(p+".tags.1", "beta")
		add(p+".price", strconv.FormatFloat(float64(i)*1.5, 'f', -1, 64))
	}
	return out
}

// BenchmarkRxJSON8K runs every @rx pattern of the CRS on the values of
// the 8 KB JSON document, through the operator with the literal
// prefilter only (as before the alphabet filter) and with both.
func BenchmarkRxJSON8K(b *testing.B) {
	patterns := crsPatterns(b)
	values := jsonArgs()
	ops := rxOps(b, patterns)
	for _, variant := range []string{"literal", "alphabet"} {
		b.Run(variant, func(b *testing.B) {
			run := make([]*rx, len(ops))
			for i, o := range ops {
				c := *o
				if variant == "literal" {
					c.alpha = nil
				}
				run[i] = &c
			}
			tx := &captureTx{}
			b.ResetTimer()
			for b.Loop() {
				for _, o := range run {
					for _, v := range values {
						o.Evaluate(tx, v)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(run)*len(values)), "ns/eval")
		})
	}
}

// rxOps builds our @rx operator for each pattern.
func rxOps(b *testing.B, patterns []string) []*rx {
	b.Helper()
	var ops []*rx
	for _, p := range patterns {
		op, err := newRx(optionsFor(p))
		if err != nil {
			b.Fatal(err)
		}
		if o, ok := op.(*rx); ok {
			ops = append(ops, o)
		}
	}
	return ops
}
