package store

import "testing"

func TestRebindDollar(t *testing.T) {
	tests := []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"a = ? AND b = ?", "a = $1 AND b = $2"},
		{"x = '?' AND y = ?", "x = '?' AND y = $1"},
		{`x = 'it''s ?' AND "we?ird" = ?`, `x = 'it''s ?' AND "we?ird" = $1`},
		{"-- what?\nSELECT ?", "-- what?\nSELECT $1"},
		{"x = 'unterminated ?", "x = 'unterminated ?"},
	}
	for _, tt := range tests {
		if got := rebindDollar(tt.in); got != tt.want {
			t.Errorf("rebindDollar(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzRebindDollar(f *testing.F) {
	f.Add("a = ? AND b = '?'")
	f.Add("'")
	f.Add("--")
	f.Fuzz(func(t *testing.T, q string) {
		_ = rebindDollar(q) // must not panic
	})
}
