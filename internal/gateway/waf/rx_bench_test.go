package waf

import (
	"regexp"
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
