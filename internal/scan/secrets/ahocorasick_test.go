package secrets

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// naiveHits finds every case-insensitive occurrence of every keyword the
// slow way, as "keyword index:end offset".
func naiveHits(keywords []string, data []byte) []string {
	lower := bytes.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, data)
	if len(lower) != len(data) { // bytes.Map rewrote invalid UTF-8
		lower = make([]byte, len(data))
		for i, c := range data {
			lower[i] = fold(c)
		}
	}
	var out []string
	for ki, k := range keywords {
		for i := 0; i+len(k) <= len(lower); i++ {
			if string(lower[i:i+len(k)]) == k {
				out = append(out, hitString(int32(ki), i+len(k)))
			}
		}
	}
	slices.Sort(out)
	return out
}

func hitString(kw int32, end int) string { return strconv.Itoa(int(kw)) + ":" + strconv.Itoa(end) }

func automatonHits(a *automaton, data []byte) []string {
	var out []string
	a.scan(data, func(kw int32, end int) { out = append(out, hitString(kw, end)) })
	slices.Sort(out)
	return out
}

func TestAutomaton_FindsWhatNaiveSearchFinds(t *testing.T) {
	keywords := []string{"key", "token", "ghp_", "he", "she", "hers", "his", "aaaa", "a", "-----begin", "ke"}
	a := newAutomaton(keywords)
	rnd := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("aAkKeEyYtToOnNsShHrRiIgGpP_-bB \n\x00\xff")
	for _, n := range []int{0, 1, 10, 100, 1000, 5000, 20000} {
		data := make([]byte, n)
		for i := range data {
			data[i] = alphabet[rnd.IntN(len(alphabet))]
		}
		if got, want := automatonHits(a, data), naiveHits(keywords, data); !slices.Equal(got, want) {
			t.Errorf("%d bytes: %d hits, want %d", n, len(got), len(want))
		}
	}
	// A keyword across every cut between the parts walked together.
	data := bytes.Repeat([]byte("x"), 40000)
	for c := 1; c < chains; c++ {
		copy(data[c*len(data)/chains-5:], "-----BEGIN")
	}
	if got, want := automatonHits(a, data), naiveHits(keywords, data); !slices.Equal(got, want) || len(got) != chains-1 {
		t.Errorf("keywords across cuts: got %v, want %v", got, want)
	}
}

func FuzzAutomaton(f *testing.F) {
	f.Add("key,token,ke", []byte("KEY=token keyed"))
	f.Add("a,aa,aaa", bytes.Repeat([]byte("aA"), 3000))
	f.Fuzz(func(t *testing.T, kws string, data []byte) {
		var keywords []string
		for _, k := range strings.Split(strings.ToLower(kws), ",") {
			if k != "" && len(k) < 40 {
				keywords = append(keywords, k)
			}
		}
		if len(keywords) == 0 || len(keywords) > 50 {
			return
		}
		for i, k := range keywords { // the engine hands over folded keywords
			b := []byte(k)
			for j := range b {
				b[j] = fold(b[j])
			}
			keywords[i] = string(b)
		}
		a := newAutomaton(keywords)
		if got, want := automatonHits(a, data), naiveHits(keywords, data); !slices.Equal(got, want) {
			t.Fatalf("automaton found %d hits, naive search %d", len(got), len(want))
		}
	})
}
