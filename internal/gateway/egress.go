package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/logging"
)

// DefaultBackendDeny are the addresses no backend connection goes to unless
// the site says otherwise (Options.BackendDeny): link-local networks, where
// clouds serve instance metadata and credentials (169.254.169.254,
// fd00:ec2::254), the clouds' other well-known instance endpoints (EKS Pod
// Identity's fd00:ec2::23, Google's IPv6 metadata fd20:ce::254, Azure's
// WireServer 168.63.129.16, Alibaba's 100.100.100.200), and addresses
// that name no single host (unspecified, multicast, broadcast). A project
// admin could otherwise publish a cloud's credentials endpoint on the
// internet through a route, or probe it with a route's health checks.
var DefaultBackendDeny = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("100.100.100.200/32"),
	netip.MustParsePrefix("168.63.129.16/32"),
	netip.MustParsePrefix("fd00:ec2::23/128"),
	netip.MustParsePrefix("fd20:ce::254/128"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("255.255.255.255/32"),
	netip.MustParsePrefix("::/128"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("fd00:ec2::254/128"),
	netip.MustParsePrefix("ff00::/8"),
}

// ParseBackendDeny parses a comma-separated list of networks (CIDR) or
// addresses; "none" is the empty list and "default" DefaultBackendDeny (as
// is an empty setting: turning the check off takes "none"). Networks
// written in IPv4-mapped form (::ffff:10.0.0.0/104) are the IPv4 networks
// they map (10.0.0.0/8).
func ParseBackendDeny(s string) ([]netip.Prefix, error) {
	switch strings.TrimSpace(s) {
	case "default", "":
		return DefaultBackendDeny, nil
	case "none":
		return []netip.Prefix{}, nil
	}
	var out []netip.Prefix
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if f == "default" {
			out = append(out, DefaultBackendDeny...)
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, fmt.Errorf("%q is not an address or a network in CIDR form", truncate(f, 60))
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			// Dialled addresses are checked unmapped (deniedBy): an
			// entry in IPv4-mapped form would otherwise match nothing.
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%q lists no network (\"none\" turns the check off)", truncate(s, 60))
	}
	return out, nil
}

// egress guards the gateway's connections to backends: every dial (proxied
// requests, websockets, health checks) is checked, after name resolution,
// against the deny list, so a host name that resolves to a denied address
// is refused as the address itself is.
type egress struct {
	deny    []netip.Prefix
	log     *slog.Logger
	lastLog atomic.Int64 // unix seconds of the last refusal logged
}

// nat64 is NAT64's well-known prefix (RFC 6052): 64:ff9b::a.b.c.d is
// the IPv4 address a.b.c.d to a host whose network translates it (DNS64
// hands such addresses out for names with only IPv4 addresses, and
// gateways such as AWS's translate them to private addresses as well).
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// deniedBy returns the deny-list network holding a, if any. An
// IPv4-mapped address is checked as the IPv4 address it maps, and one in
// NAT64's well-known prefix both as itself and as the IPv4 address it
// embeds.
func (e *egress) deniedBy(a netip.Addr) (netip.Prefix, bool) {
	a = a.Unmap().WithZone("")
	var v4 netip.Addr
	if nat64.Contains(a) {
		b := a.As16()
		v4 = netip.AddrFrom4([4]byte(b[12:]))
	}
	for _, p := range e.deny {
		if p.Contains(a) || v4.IsValid() && p.Contains(v4) {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// control is the dialers' Control hook: it runs on the resolved address
// before the connection is made.
func (e *egress) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return nil // not an IP socket (the dialers only open TCP)
	}
	p, denied := e.deniedBy(ap.Addr())
	if !denied {
		return nil
	}
	if now := time.Now().Unix(); e.lastLog.Swap(now) != now {
		e.log.Warn("gateway refused to connect to a backend address on its deny list (--gateway-backend-deny)",
			logging.KeyAddr, address, "network", p.String())
	}
	return fmt.Errorf("gateway: backend address %s is in %s, which the gateway's backend deny list refuses", ap.Addr(), p)
}

// checkBackends refuses backend URLs whose host is an address on the deny
// list (host names are checked when they are dialled).
func (e *egress) checkBackends(bs []Backend) error {
	for _, b := range bs {
		u, err := url.Parse(b.URL)
		if err != nil {
			continue // Normalize has refused it already
		}
		a, err := netip.ParseAddr(u.Hostname())
		if err != nil {
			continue
		}
		if p, denied := e.deniedBy(a); denied {
			return apperr.InvalidField("backends", "backend %s is in %s, which the gateway's backend deny list refuses (a site admin sets it with --gateway-backend-deny)", u.Host, p)
		}
	}
	return nil
}

func (e *egress) dialer() *net.Dialer {
	return &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: e.control}
}

// maxGatewayHops is how many Rampart gateways a request may pass through:
// more means a loop between gateways (each names itself differently).
const maxGatewayHops = 8

// viaName is the pseudonym this gateway adds to the Via header of the
// requests it forwards (RFC 9110, section 7.6.3): random per process, so
// that a request coming back to the gateway that forwarded it is told from
// one that went through another gateway.
func newViaName() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "rampart-" + hex.EncodeToString(b[:])
}

// viaFor is the Via entry for a request received as r: the protocol
// version it came in ("1.0", "1.1", "2") and this gateway's pseudonym.
func (g *Gateway) viaFor(r *http.Request) string {
	switch {
	case r.ProtoMajor >= 2:
		return "2 " + g.viaName
	case r.ProtoMinor == 0:
		return "1.0 " + g.viaName
	}
	return g.via
}

// looped reports whether a request's Via values show it passed through
// this gateway already, or through more gateways than any sane chain has:
// a route whose backend leads back to a gateway would otherwise forward
// one request to itself until connections ran out.
func (g *Gateway) looped(via []string) bool {
	hops := 0
	for _, v := range via {
		if strings.Contains(v, g.viaName) {
			return true
		}
		hops += strings.Count(v, " rampart-")
	}
	return hops >= maxGatewayHops
}
