package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"time"
)

// certStore picks the certificate for a TLS handshake by server name:
// a configured certificate that covers the name, else, with ACME, the
// ACME certificate of a host an exact route claims, else one issued by
// the local CA for the route host claiming it (cached), else the default
// certificate (localhost and the loopback addresses).
type certStore struct {
	issuer  CertIssuer
	static  []tls.Certificate
	claimed func(host string) (string, bool)
	acme    *acmeCerts // nil without ACME
	mu      sync.Mutex
	issued  map[string]*tls.Certificate
}

func newCertStore(issuer CertIssuer, static []tls.Certificate, claimed func(string) (string, bool)) *certStore {
	for i := range static {
		if static[i].Leaf == nil && len(static[i].Certificate) > 0 {
			static[i].Leaf, _ = x509.ParseCertificate(static[i].Certificate[0])
		}
	}
	return &certStore{issuer: issuer, static: static, claimed: claimed, issued: map[string]*tls.Certificate{}}
}

func (s *certStore) get(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.TrimSuffix(strings.ToLower(hello.ServerName), ".")
	if s.acme != nil && challenge(hello) {
		return s.acme.m.GetCertificate(hello)
	}
	for i := range s.static {
		if leaf := s.static[i].Leaf; leaf != nil && name != "" && leaf.VerifyHostname(name) == nil {
			return &s.static[i], nil
		}
	}
	if s.acme != nil {
		if plain, ok := plainName(hello); ok && plain == name && acmeHost(name, s.claimed) {
			if c, err := s.acme.get(hello, name); err == nil {
				return c, nil
			}
		}
	}
	key := "default"
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if name != "" {
		if claim, ok := s.claimed(name); ok {
			key, hosts = claim, []string{claim}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.issued[key]; c != nil && time.Until(c.Leaf.NotAfter) > 7*24*time.Hour {
		return c, nil
	}
	if s.issuer == nil {
		if len(s.static) > 0 {
			return &s.static[0], nil
		}
		return nil, errors.New("no certificate for " + name)
	}
	c, err := s.issuer.Issue(hosts)
	if err != nil {
		return nil, err
	}
	if c.Leaf == nil {
		c.Leaf, _ = x509.ParseCertificate(c.Certificate[0])
	}
	if len(s.issued) > 10000 {
		clear(s.issued)
	}
	s.issued[key] = &c
	return &c, nil
}
