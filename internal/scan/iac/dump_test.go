package iac_test

import (
	"os"
	"testing"
)

func TestDump(t *testing.T) {
	p := os.Getenv("DUMP")
	if p == "" {
		t.Skip()
	}
	data, _ := os.ReadFile(p)
	f, n := scanner(t).Scan(t.Context(), p, data)
	for _, x := range f {
		t.Logf("%s %d %s | %s", x.RuleID, x.Location.StartLine, x.Description, x.Fingerprint[:8])
	}
	t.Log(n)
}
