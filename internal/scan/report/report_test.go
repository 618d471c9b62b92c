package report

import (
	"encoding/json"
	"testing"
)

func TestSeverity(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Severity
		ok   bool
	}{
		{"critical", SeverityCritical, true},
		{"HIGH", SeverityHigh, true},
		{" medium ", SeverityMedium, true},
		{"moderate", SeverityMedium, true},
		{"low", SeverityLow, true},
		{"info", SeverityInfo, true},
		{"severe", SeverityUnknown, false},
	} {
		got, err := ParseSeverity(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseSeverity(%q) = %v, %v", tt.in, got, err)
		}
	}
	b, _ := json.Marshal(struct{ S Severity }{SeverityHigh})
	if string(b) != `{"S":"high"}` {
		t.Errorf("JSON = %s", b)
	}
	var v struct{ S Severity }
	if err := json.Unmarshal([]byte(`{"S":"critical"}`), &v); err != nil || v.S != SeverityCritical {
		t.Errorf("unmarshal = %v, %v", v.S, err)
	}
	if err := json.Unmarshal([]byte(`{"S":"bad"}`), &v); err == nil {
		t.Error("unknown severity accepted")
	}
}

func TestReport_WorstIgnoresSuppressed(t *testing.T) {
	r := Report{Findings: []Finding{
		{Severity: SeverityCritical, Suppressed: &Suppressed{Reason: "test fixture"}},
		{Severity: SeverityMedium},
		{Severity: SeverityHigh},
	}}
	if r.Worst() != SeverityHigh {
		t.Errorf("Worst = %v", r.Worst())
	}
	if n := r.CountAtLeast(SeverityHigh); n != 1 {
		t.Errorf("CountAtLeast(high) = %d", n)
	}
}

func TestFingerprint_LengthPrefixed(t *testing.T) {
	if Fingerprint("ab", "c") == Fingerprint("a", "bc") {
		t.Error("fingerprints of different parts collide")
	}
	if Fingerprint("x") != Fingerprint("x") || len(Fingerprint("x")) != 32 {
		t.Error("fingerprint not stable or wrong length")
	}
}
