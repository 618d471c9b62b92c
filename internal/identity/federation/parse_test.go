package federation

import (
	"encoding/json"
	"net/mail"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/authz"
	"github.com/rampartsec/rampart/internal/identity"
)

func TestSanitizeUsername(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"alice", "alice"},
		{"Alice", "alice"},
		{"alice@corp.example", "alice"},
		{"First.Last@corp.example", "first.last"},
		{"Jörg Müller", "j-rg-m-ller"},
		{"user name", "user-name"},
		{"a--b", "a-b"},
		{"..hidden..name..", "hidden.name"},
		{"-_-leading", "leading"},
		{"CORP\\alice", "corp-alice"},
		{"___", "user"},
		{"", "user"},
		{"@corp.example", "user"},
		{"login", "user"}, // reserved
		{strings.Repeat("a", 39) + "-" + strings.Repeat("b", 10), strings.Repeat("a", 39)},
		{strings.Repeat("x", 100), strings.Repeat("x", 40)},
	} {
		if got := SanitizeUsername(tc.in); got != tc.want {
			t.Errorf("SanitizeUsername(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCandidateName(t *testing.T) {
	long := strings.Repeat("a", 38) + ".b"
	for _, tc := range []struct {
		base string
		i    int
		want string
	}{
		{"bob", 0, "bob"},
		{"bob", 1, "bob-2"},
		{"bob", 41, "bob-42"},
		{long, 1, strings.Repeat("a", 38) + "-2"},
		{long, 99, strings.Repeat("a", 36) + "-100"},
	} {
		got := candidateName(tc.base, tc.i)
		if got != tc.want {
			t.Errorf("candidateName(%q, %d) = %q, want %q", tc.base, tc.i, got, tc.want)
		}
		if err := identity.ValidateName("username", got); err != nil {
			t.Errorf("candidateName(%q, %d) = %q is not a valid name: %v", tc.base, tc.i, got, err)
		}
	}
}

func TestValidateIssuer(t *testing.T) {
	for _, tc := range []struct {
		issuer string
		ok     bool
	}{
		{"https://login.example.com", true},
		{"https://login.example.com/realms/corp", true},
		{"https://accounts.example.com/", true},
		{"http://localhost:8080", true},
		{"http://127.0.0.1:9000", true},
		{"http://127.1.2.3", true},
		{"http://[::1]:9000", true},
		{"http://login.example.com", false},
		{"http://10.0.0.1", false},
		{"ftp://login.example.com", false},
		{"login.example.com", false},
		{"https://", false},
		{"https://:443", false},
		{"https://user:pw@login.example.com", false},
		{"https://login.example.com?tenant=x", false},
		{"https://login.example.com#x", false},
		{"https://login.example.com:99999", false},
		{"https://login.example.com/a b", false},
		{"", false},
		{"https://" + strings.Repeat("a", 600) + ".com", false},
	} {
		err := ValidateIssuer(tc.issuer)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateIssuer(%q) = %v, want ok=%v", tc.issuer, err, tc.ok)
		}
		if err != nil && (apperr.KindOf(err) != apperr.Invalid || apperr.FieldOf(err) != "issuer") {
			t.Errorf("ValidateIssuer(%q) error %v is not an invalid issuer field", tc.issuer, err)
		}
	}
}

func TestValidateProvider(t *testing.T) {
	base := NewProvider{Name: "corp", Issuer: "https://login.example.com", ClientID: "rampart"}
	with := func(f func(*NewProvider)) NewProvider { np := base; f(&np); return np }
	t.Run("defaults", func(t *testing.T) {
		p, err := validateProvider(base)
		if err != nil {
			t.Fatal(err)
		}
		want := Provider{Name: "corp", Label: "corp", Issuer: "https://login.example.com", ClientID: "rampart",
			Scopes: []string{"openid", "profile", "email"}, UsernameClaim: "preferred_username", Role: authz.Reader}
		if diff := cmp.Diff(want, p); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("scopes keep openid first", func(t *testing.T) {
		p, err := validateProvider(with(func(np *NewProvider) { np.Scopes = []string{"email,groups", "openid", "profile groups"} }))
		if err != nil || !cmp.Equal(p.Scopes, []string{"openid", "email", "groups", "profile"}) {
			t.Errorf("scopes = %v, %v", p.Scopes, err)
		}
	})
	for _, tc := range []struct {
		name  string
		np    NewProvider
		field string
	}{
		{"bad name", with(func(np *NewProvider) { np.Name = "Corp SSO" }), "name"},
		{"reserved name", with(func(np *NewProvider) { np.Name = "login" }), "name"},
		{"owner role", with(func(np *NewProvider) { np.Role = "owner" }), "role"},
		{"unknown role", with(func(np *NewProvider) { np.Role = "admin" }), "role"},
		{"no client id", with(func(np *NewProvider) { np.ClientID = " " }), "client_id"},
		{"client id with a newline", with(func(np *NewProvider) { np.ClientID = "a\nb" }), "client_id"},
		{"long secret", with(func(np *NewProvider) { np.ClientSecret = strings.Repeat("s", 1025) }), "client_secret"},
		{"bad claim", with(func(np *NewProvider) { np.UsernameClaim = "user name" }), "username_claim"},
		{"bad scope", with(func(np *NewProvider) { np.Scopes = []string{`a"b`} }), "scopes"},
		{"too many scopes", with(func(np *NewProvider) { np.Scopes = strings.Fields(scopesN(25)) }), "scopes"},
		{"long label", with(func(np *NewProvider) { np.Label = strings.Repeat("l", 61) }), "label"},
		{"plain http issuer", with(func(np *NewProvider) { np.Issuer = "http://login.example.com" }), "issuer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := validateProvider(tc.np)
			if apperr.KindOf(err) != apperr.Invalid || apperr.FieldOf(err) != tc.field {
				t.Errorf("err = %v (field %q), want invalid %s", err, apperr.FieldOf(err), tc.field)
			}
		})
	}
	for _, role := range []string{"reader", "developer", "maintainer"} {
		if p, err := validateProvider(with(func(np *NewProvider) { np.Role = role })); err != nil || p.Role.String() != role {
			t.Errorf("role %s: %v %v", role, p.Role, err)
		}
	}
}

func scopesN(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("s")
		b.WriteString(strings.Repeat("x", i+1))
		b.WriteString(" ")
	}
	return b.String()
}

func TestIdentityFromClaims(t *testing.T) {
	for _, tc := range []struct {
		name   string
		claims string
		claim  string
		want   upstreamIdentity
		mfa    bool
		err    bool
	}{
		{name: "full", claim: "preferred_username",
			claims: `{"sub":"42","preferred_username":"ada","email":"Ada@Corp.example","email_verified":true,"name":"Ada L.","amr":["pwd","otp","mfa"]}`,
			want:   upstreamIdentity{Subject: "42", Username: "ada", Email: "ada@corp.example", EmailVerified: true, Name: "Ada L.", AMR: []string{"pwd", "otp", "mfa"}},
			mfa:    true},
		{name: "verified as a string", claim: "preferred_username",
			claims: `{"sub":"42","email":"a@corp.example","email_verified":"true"}`,
			want:   upstreamIdentity{Subject: "42", Email: "a@corp.example", EmailVerified: true}},
		{name: "unverified", claim: "preferred_username",
			claims: `{"sub":"42","email":"a@corp.example","email_verified":false,"amr":["pwd"]}`,
			want:   upstreamIdentity{Subject: "42", Email: "a@corp.example", AMR: []string{"pwd"}}},
		{name: "bad e-mail is dropped, its verification too", claim: "preferred_username",
			claims: `{"sub":"42","email":"Ada <a@corp.example>","email_verified":true}`,
			want:   upstreamIdentity{Subject: "42"}},
		{name: "other claim, wrong types ignored", claim: "upn",
			claims: `{"sub":"s","upn":"ada@corp.example","preferred_username":"x","name":7,"amr":"hwk"}`,
			want:   upstreamIdentity{Subject: "s", Username: "ada@corp.example", AMR: []string{"hwk"}},
			mfa:    true},
		{name: "control characters leave the display name", claim: "preferred_username",
			claims: `{"sub":"s","name":"Ada\u0000\u001b[31m Lovelace"}`,
			want:   upstreamIdentity{Subject: "s", Name: "Ada[31m Lovelace"}},
		{name: "no subject", claim: "preferred_username", claims: `{"preferred_username":"ada"}`, err: true},
		{name: "numeric subject", claim: "preferred_username", claims: `{"sub":42}`, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var claims map[string]any
			if err := json.Unmarshal([]byte(tc.claims), &claims); err != nil {
				t.Fatal(err)
			}
			got, err := identityFromClaims(claims, tc.claim)
			if tc.err {
				if apperr.KindOf(err) != apperr.Unauthenticated {
					t.Errorf("err = %v, want unauthenticated", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if got.mfa() != tc.mfa {
				t.Errorf("mfa = %v, want %v", got.mfa(), tc.mfa)
			}
		})
	}
}

func FuzzSanitizeUsername(f *testing.F) {
	for _, s := range []string{"alice", "Alice@corp", "Jörg Müller", "..a..", "login", "", strings.Repeat("ab-", 30), "a\x00b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := SanitizeUsername(s)
		if err := identity.ValidateName("username", got); err != nil {
			t.Fatalf("SanitizeUsername(%q) = %q, not a valid name: %v", s, got, err)
		}
		if again := SanitizeUsername(got); again != got {
			t.Fatalf("SanitizeUsername is not idempotent: %q → %q → %q", s, got, again)
		}
		for i := range 3 {
			if c := candidateName(got, i*50); identity.ValidateName("username", c) != nil {
				t.Fatalf("candidate %q of %q is not a valid name", c, got)
			}
		}
	})
}

func FuzzValidateIssuer(f *testing.F) {
	for _, s := range []string{"https://login.example.com", "http://127.0.0.1:8080/realms/x", "http://evil.example", "https://a@b", "https://[::1]:1", "javascript:alert(1)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateIssuer(s) != nil {
			return
		}
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("accepted %q, which does not parse: %v", s, err)
		}
		if u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
			t.Fatalf("accepted %q: scheme %q on host %q", s, u.Scheme, u.Hostname())
		}
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Hostname() == "" {
			t.Fatalf("accepted %q with credentials, a query, a fragment or no host", s)
		}
	})
}

func FuzzIdentityFromClaims(f *testing.F) {
	for _, s := range []string{
		`{"sub":"42","preferred_username":"ada","email":"a@b.example","email_verified":true,"amr":["otp"]}`,
		`{"sub":"x","email_verified":"true","email":"x@y.z","amr":"mfa","name":"\u0000"}`,
		`{"sub":""}`, `{}`, `[]`,
	} {
		f.Add(s, "preferred_username")
	}
	f.Fuzz(func(t *testing.T, raw, claim string) {
		var claims map[string]any
		if json.Unmarshal([]byte(raw), &claims) != nil {
			return
		}
		id, err := identityFromClaims(claims, claim)
		if err != nil {
			return
		}
		if id.Subject == "" || len(id.Subject) > 255 {
			t.Fatalf("accepted subject %q", id.Subject)
		}
		if id.Email != "" {
			if a, err := mail.ParseAddress(id.Email); err != nil || a.Address != id.Email || id.Email != strings.ToLower(id.Email) {
				t.Fatalf("kept e-mail %q", id.Email)
			}
		} else if id.EmailVerified {
			t.Fatal("verified without an e-mail address")
		}
		if len(id.Name) > 100 || strings.ContainsAny(id.Name, "\x00\n\r\x1b") {
			t.Fatalf("kept display name %q", id.Name)
		}
		if len(id.AMR) > 16 {
			t.Fatalf("kept %d amr values", len(id.AMR))
		}
	})
}
