package audit

import (
	"bytes"
	"testing"
	"time"
)

// FuzzParseJournal: any bytes parse without a panic; what parses encodes
// back to a line that parses to the same entry.
func FuzzParseJournal(f *testing.F) {
	line, _ := appendJournalLine(nil, journaled{N: 3, Record: Record{Action: "vault.secret.read", At: time.Unix(5, 0).UTC(),
		Target: Target{Type: "secret", ID: "9"}, Details: map[string]any{"version": 2}}})
	f.Add(line)
	f.Add(append(append([]byte{}, line...), line[:20]...))
	f.Add([]byte("00000000 {}\n"))
	f.Add([]byte("zzzzzzzz {\"n\":1}\n\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, _ := parseJournal(b)
		for _, e := range entries {
			again, err := appendJournalLine(nil, e)
			if err != nil {
				t.Fatal(err)
			}
			back, ok := parseJournalLine(bytes.TrimSuffix(again, []byte("\n")))
			if !ok || back.N != e.N || back.Record.Action != e.Record.Action || !back.Record.At.Equal(e.Record.At) {
				t.Fatalf("%q parsed to %+v, which re-parses to %+v (%v)", b, e, back, ok)
			}
		}
	})
}
