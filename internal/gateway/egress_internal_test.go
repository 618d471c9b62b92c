package gateway

import (
	"io"
	"log/slog"
	"testing"
)

// TestEgress_ControlTranslatedAddresses: the dial check refuses an IPv6
// address that reaches a denied IPv4 address through a translator — an
// IPv4-mapped address, or one in NAT64's well-known prefix 64:ff9b::/96
// (RFC 6052), which DNS64 hands out for IPv4-only names and NAT64
// gateways (AWS's among them) translate to private addresses too — and a
// deny-list entry written in IPv4-mapped form denies the IPv4 addresses
// it names.
func TestEgress_ControlTranslatedAddresses(t *testing.T) {
	for _, tc := range []struct {
		deny, addr string
		denied     bool
	}{
		{deny: "default", addr: "169.254.169.254:80", denied: true},
		{deny: "default", addr: "[::ffff:169.254.169.254]:80", denied: true},
		{deny: "default", addr: "[64:ff9b::a9fe:a9fe]:80", denied: true},
		{deny: "default", addr: "[64:ff9b::169.254.169.254]:443", denied: true},
		{deny: "default", addr: "[64:ff9b::808:808]:80", denied: false},
		{deny: "default,10.0.0.0/8", addr: "[64:ff9b::a00:5]:8080", denied: true},
		{deny: "::ffff:10.0.0.0/104", addr: "10.1.2.3:80", denied: true},
		{deny: "::ffff:10.0.0.0/104", addr: "[::ffff:10.1.2.3]:80", denied: true},
		{deny: "::ffff:10.0.0.0/104", addr: "[64:ff9b::a01:203]:80", denied: true},
		{deny: "::ffff:10.0.0.0/104", addr: "11.1.2.3:80", denied: false},
		{deny: "::ffff:169.254.169.254", addr: "169.254.169.254:80", denied: true},
		{deny: "64:ff9b::/96", addr: "[64:ff9b::808:808]:80", denied: true},
		{deny: "none", addr: "[64:ff9b::a9fe:a9fe]:80", denied: false},
	} {
		deny, err := ParseBackendDeny(tc.deny)
		if err != nil {
			t.Fatalf("%q: %v", tc.deny, err)
		}
		e := &egress{deny: deny, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		err = e.control("tcp", tc.addr, nil)
		if got := err != nil; got != tc.denied {
			t.Errorf("deny %q, dial %s: refused %v (%v), want %v", tc.deny, tc.addr, got, err, tc.denied)
		}
	}
}
