package gateway

import "testing"

func TestHostsConflict(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"a.b.c", "a.b.c", true},
		{"a.b.c", "*.b.c", true},
		{"*.b.c", "x.b.c", true},
		{"*.b.c", "*.b.c", true},
		{"x.y.b.c", "*.b.c", false}, // two labels below: the wildcard does not match it
		{"b.c", "*.b.c", false},
		{"*.c.d", "a.b.c.d", false},
		{"a.b.c", "x.b.c", false},
		{"localhost", "*.localhost", false},
		{"", "a.b.c", false},
		{"", "", true},
	} {
		if got := hostsConflict(c.a, c.b); got != c.want {
			t.Errorf("hostsConflict(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
		if got := hostsConflict(c.b, c.a); got != c.want {
			t.Errorf("hostsConflict(%q, %q) = %v, want %v", c.b, c.a, got, c.want)
		}
	}
}
