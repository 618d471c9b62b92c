package app

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/scan/report"
)

func TestLeakCandidates(t *testing.T) {
	for _, tt := range []struct {
		name string
		data string
		loc  report.Location
		want []string
	}{
		{"columns pick the match first", "x\nTOKEN=\"ghp_abcdef\" # ci\n", report.Location{StartLine: 2, StartCol: 8, EndCol: 18},
			[]string{"ghp_abcdef", `TOKEN="ghp_abcdef" # ci`, "TOKEN"}},
		{"no columns: the line and its words", "password: hunter22, user: ada\n", report.Location{StartLine: 1},
			[]string{"password: hunter22, user: ada", "password", "hunter22", "user"}},
		{"line past the end", "one\n", report.Location{StartLine: 5}, nil},
		{"columns past the line are ignored", "abcd efgh", report.Location{StartLine: 1, StartCol: 3, EndCol: 40},
			[]string{"abcd efgh", "abcd", "efgh"}},
		{"multi-byte runes", "κλειδί=σ3cr3tvalue", report.Location{StartLine: 1, StartCol: 8, EndCol: 19},
			[]string{"σ3cr3tvalue", "κλειδί=σ3cr3tvalue", "κλειδί"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, leakCandidates([]byte(tt.data), tt.loc)); diff != "" {
				t.Errorf("candidates (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzLeakCandidates: any file and location give at most
// maxLeakCandidates texts, each of 4 bytes or more and part of the line.
func FuzzLeakCandidates(f *testing.F) {
	f.Add([]byte("TOKEN=ghp_abcdef\n"), 1, 7, 17, 0)
	f.Add([]byte("a\r\nb c d e f\n"), 2, 0, 0, 2)
	f.Add([]byte("κλειδί=σ3cr3t"), 1, 8, 14, 1)
	f.Add([]byte(""), 0, -1, -5, 0)
	f.Fuzz(func(t *testing.T, data []byte, line, start, end, endLine int) {
		if line < 1 {
			return // scm reports lines from 1; the adapter skips others
		}
		got := leakCandidates(data, report.Location{StartLine: line, StartCol: start, EndCol: end, EndLine: endLine})
		if len(got) > maxLeakCandidates {
			t.Fatalf("%d candidates", len(got))
		}
		lines := strings.Split(string(data), "\n")
		for _, c := range got {
			if len(c) < 4 || !strings.Contains(lines[line-1], c) {
				t.Fatalf("candidate %q is not a text of 4+ bytes of line %q", c, lines[line-1])
			}
		}
	})
}
