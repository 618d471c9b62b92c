package identity

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/identity/webauthntest"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

const (
	testPublicURL = "https://rampart.example"
	testOrigin    = "https://rampart.example"
)

// register registers a key of authenticator a for u, failing the test on
// any error.
func (e *mfaEnv) register(t *testing.T, a *webauthntest.Authenticator, u User, binding, name string) (WebAuthnKey, []string) {
	t.Helper()
	ctx := t.Context()
	opts, err := e.ids.BeginWebAuthnRegistration(ctx, u, binding, name)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.Create(opts)
	if err != nil {
		t.Fatal(err)
	}
	k, codes, err := e.ids.FinishWebAuthnRegistration(ctx, u, binding, resp)
	if err != nil {
		t.Fatal(err)
	}
	return k, codes
}

// keyRow reads what the store holds about a key.
func (e *mfaEnv) keyRow(t *testing.T, userID int64) storedKey {
	t.Helper()
	keys, err := e.ids.loadKeys(t.Context(), e.ids.db, userID)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 {
		t.Fatalf("user %d has %d keys, want 1", userID, len(keys))
	}
	return keys[0]
}

func TestWebAuthn_RegisterLoginRemove(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newMFAEnv(t, db, testPublicURL)
		ctx := t.Context()
		u := e.user(t, "alice")
		a := webauthntest.New(testOrigin)

		opts, err := e.ids.BeginWebAuthnRegistration(ctx, u, "sess-1", "  ")
		if err != nil {
			t.Fatal(err)
		}
		var creation struct {
			PublicKey struct {
				RP                     struct{ ID, Name string }
				AuthenticatorSelection struct {
					ResidentKey string `json:"residentKey"`
				} `json:"authenticatorSelection"`
				Extensions map[string]any `json:"extensions"`
			} `json:"publicKey"`
		}
		if err := json.Unmarshal(opts, &creation); err != nil {
			t.Fatal(err)
		}
		if creation.PublicKey.RP.ID != "rampart.example" || creation.PublicKey.AuthenticatorSelection.ResidentKey != "preferred" ||
			creation.PublicKey.Extensions["credProps"] != true {
			t.Errorf("creation options = %s; want rp.id rampart.example, residentKey preferred, credProps", opts)
		}
		resp, err := a.Create(opts)
		if err != nil {
			t.Fatal(err)
		}
		key, codes, err := e.ids.FinishWebAuthnRegistration(ctx, u, "sess-1", resp)
		if err != nil {
			t.Fatal(err)
		}
		if key.Name != defaultKeyName || !key.Discoverable {
			t.Errorf("key = %+v, want the default name and a discoverable credential", key)
		}
		if len(codes) != RecoveryCodeCount {
			t.Errorf("first key came with %d recovery codes, want %d", len(codes), RecoveryCodeCount)
		}
		if st, _ := e.ids.MFAStatus(ctx, u.ID); st.WebAuthn != 1 || !st.Enrolled() {
			t.Errorf("MFA status = %+v, want one security key", st)
		}
		if got := e.audited(t, "user.mfa.webauthn.register"); len(got) != 1 || got[0].TargetName != "alice" || got[0].Details["key"] != defaultKeyName {
			t.Errorf("audit user.mfa.webauthn.register = %+v", got)
		}

		// The same authenticator is excluded from a second registration.
		opts, err = e.ids.BeginWebAuthnRegistration(ctx, u, "sess-1", "Spare")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Create(opts); err == nil || !strings.Contains(err.Error(), "excluded") {
			t.Errorf("second registration of the same key: err = %v, want the authenticator to refuse (excluded)", err)
		}

		// Second factor.
		e.clock.Advance(time.Minute)
		opts, err = e.ids.BeginWebAuthnLogin(ctx, u, "pending-1", "192.0.2.1")
		if err != nil {
			t.Fatal(err)
		}
		resp, err = a.Get(opts)
		if err != nil {
			t.Fatal(err)
		}
		amr, err := e.ids.FinishWebAuthnLogin(ctx, u, "pending-1", "192.0.2.1", resp)
		if err != nil {
			t.Fatal(err)
		}
		if amr != AMRHardware {
			t.Errorf("amr = %q, want %q", amr, AMRHardware)
		}
		row := e.keyRow(t, u.ID)
		if row.cred.Authenticator.SignCount != 1 || !row.LastUsedAt.Equal(e.clock.Now()) {
			t.Errorf("after sign-in: counter %d, last used %v; want 1 and %v", row.cred.Authenticator.SignCount, row.LastUsedAt, e.clock.Now())
		}
		// The answer cannot be replayed: its ceremony is spent.
		if _, err := e.ids.FinishWebAuthnLogin(ctx, u, "pending-1", "192.0.2.1", resp); !apperr.Is(err, apperr.Unauthenticated) {
			t.Errorf("replayed answer: err = %v, want Unauthenticated", err)
		}

		// Passkey: no user name, the key verifies its user.
		opts, err = e.ids.BeginPasskeyLogin(ctx, "cookie-1", "192.0.2.1")
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(opts, []byte("allowCredentials")) {
			t.Errorf("passkey options name credentials: %s", opts)
		}
		resp, err = a.Get(opts)
		if err != nil {
			t.Fatal(err)
		}
		who, amrs, err := e.ids.FinishPasskeyLogin(ctx, "cookie-1", "192.0.2.1", resp)
		if err != nil {
			t.Fatal(err)
		}
		if who.ID != u.ID || strings.Join(amrs, " ") != "hwk mfa" {
			t.Errorf("passkey sign-in = %s %v, want alice [hwk mfa]", who.Username, amrs)
		}

		// Only its owner removes a key.
		bob := e.user(t, "bob")
		if err := e.ids.RemoveWebAuthnKey(ctx, bob.ID, key.ID); !apperr.Is(err, apperr.NotFound) {
			t.Errorf("bob removing alice's key: err = %v, want NotFound", err)
		}
		if err := e.ids.RemoveWebAuthnKey(ctx, u.ID, key.ID); err != nil {
			t.Fatal(err)
		}
		if keys, _ := e.ids.WebAuthnKeys(ctx, u.ID); len(keys) != 0 {
			t.Errorf("keys after removal = %+v", keys)
		}
		if got := e.audited(t, "user.mfa.webauthn.remove"); len(got) != 1 || got[0].Details["key_id"] != float64(key.ID) {
			t.Errorf("audit user.mfa.webauthn.remove = %+v", got)
		}
		// A removed key signs nobody in.
		opts, err = e.ids.BeginPasskeyLogin(ctx, "cookie-1", "192.0.2.1")
		if err != nil {
			t.Fatal(err)
		}
		resp, _ = a.Get(opts)
		if _, _, err := e.ids.FinishPasskeyLogin(ctx, "cookie-1", "192.0.2.1", resp); !apperr.Is(err, apperr.Unauthenticated) {
			t.Errorf("removed passkey: err = %v, want Unauthenticated", err)
		}
	}, audit.Migrations, Migrations)
}

// TestWebAuthn_SecondFactorRefused runs bad answers to a second-factor
// ceremony: each is refused, counted and audited, and leaves the stored key
// as it was.
func TestWebAuthn_SecondFactorRefused(t *testing.T) {
	cases := []struct {
		name string
		// answer produces the browser's answer to opts (begun with binding
		// "pending") and may change the binding finish uses.
		answer func(t *testing.T, e *mfaEnv, a *webauthntest.Authenticator, opts []byte) (resp []byte, binding string)
		want   apperr.Kind
		// counted: the failure is counted and audited as a wrong factor.
		counted bool
	}{
		{"not JSON", func(*testing.T, *mfaEnv, *webauthntest.Authenticator, []byte) ([]byte, string) {
			return []byte("{"), "pending"
		}, apperr.Unauthenticated, true},
		{"empty object", func(*testing.T, *mfaEnv, *webauthntest.Authenticator, []byte) ([]byte, string) {
			return []byte("{}"), "pending"
		}, apperr.Unauthenticated, true},
		{"too large", func(*testing.T, *mfaEnv, *webauthntest.Authenticator, []byte) ([]byte, string) {
			return bytes.Repeat([]byte(" "), MaxWebAuthnResponse+1), "pending"
		}, apperr.TooLarge, true},
		{"wrong challenge", func(t *testing.T, _ *mfaEnv, a *webauthntest.Authenticator, opts []byte) ([]byte, string) {
			return answer(t, a, withChallenge(t, opts, bytes.Repeat([]byte{1}, 32))), "pending"
		}, apperr.Unauthenticated, true},
		{"wrong origin", func(t *testing.T, _ *mfaEnv, a *webauthntest.Authenticator, opts []byte) ([]byte, string) {
			a.Origin = "https://rampart.example.evil.test"
			return answer(t, a, opts), "pending"
		}, apperr.Unauthenticated, true},
		{"unknown credential", func(t *testing.T, e *mfaEnv, _ *webauthntest.Authenticator, opts []byte) ([]byte, string) {
			other := webauthntest.New(testOrigin)
			other.IgnoreAllowList = true
			e.register(t, other, e.user(t, "mallory"), "mallory-sess", "Mallory's key")
			return answer(t, other, opts), "pending"
		}, apperr.Unauthenticated, true},
		{"cloned key (counter went back)", func(t *testing.T, _ *mfaEnv, a *webauthntest.Authenticator, opts []byte) ([]byte, string) {
			a.Credentials()[0].Counter = 0 // answers with 1, not above the stored 1
			return answer(t, a, opts), "pending"
		}, apperr.Unauthenticated, true},
		{"another browser's ceremony", func(t *testing.T, _ *mfaEnv, a *webauthntest.Authenticator, opts []byte) ([]byte, string) {
			return answer(t, a, opts), "other-pending"
		}, apperr.Unauthenticated, false},
		{"expired ceremony", func(t *testing.T, e *mfaEnv, a *webauthntest.Authenticator, opts []byte) ([]byte, string) {
			e.clock.Advance(ceremonyLifetime + time.Second)
			return answer(t, a, opts), "pending"
		}, apperr.Unauthenticated, false},
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newMFAEnv(t, db, testPublicURL)
		ctx := t.Context()
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				u := e.user(t, "user"+string(rune('a'+i)))
				a := webauthntest.New(testOrigin)
				e.register(t, a, u, "sess", "Key")
				// One good sign-in, so the stored counter is 1.
				opts, err := e.ids.BeginWebAuthnLogin(ctx, u, "pending", "192.0.2.9")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := e.ids.FinishWebAuthnLogin(ctx, u, "pending", "192.0.2.9", answer(t, a, opts)); err != nil {
					t.Fatal(err)
				}
				before := e.keyRow(t, u.ID)
				failuresBefore := len(e.audited(t, "user.login"))

				opts, err = e.ids.BeginWebAuthnLogin(ctx, u, "pending", "192.0.2.9")
				if err != nil {
					t.Fatal(err)
				}
				resp, binding := tc.answer(t, e, a, opts)
				amr, err := e.ids.FinishWebAuthnLogin(ctx, u, binding, "192.0.2.9", resp)
				if amr != "" {
					t.Errorf("amr = %q for a refused answer", amr)
				}
				wantKind(t, err, tc.want)

				after := e.keyRow(t, u.ID)
				if after.cred.Authenticator.SignCount != before.cred.Authenticator.SignCount || !after.LastUsedAt.Equal(before.LastUsedAt) {
					t.Errorf("stored key changed: counter %d → %d, last used %v → %v", before.cred.Authenticator.SignCount,
						after.cred.Authenticator.SignCount, before.LastUsedAt, after.LastUsedAt)
				}
				failures := e.audited(t, "user.login")[failuresBefore:]
				if tc.counted {
					if len(failures) != 1 || failures[0].Outcome != audit.Failure || failures[0].TargetName != u.Username {
						t.Fatalf("audited failures = %+v, want one failed sign-in of %s", failures, u.Username)
					}
					if reason, _ := failures[0].Details["reason"].(string); tc.name == "cloned key (counter went back)" && !strings.Contains(reason, "cloned") {
						t.Errorf("clone audited as %q", reason)
					}
				} else if len(failures) != 0 {
					t.Errorf("audited failures = %+v, want none", failures)
				}
			})
		}
	}, audit.Migrations, Migrations)
}

func TestWebAuthn_PasskeyRefused(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newMFAEnv(t, db, testPublicURL)
		ctx := t.Context()
		u := e.user(t, "dave")
		a := webauthntest.New(testOrigin)
		e.register(t, a, u, "sess", "Laptop")

		cases := []struct {
			name   string
			setup  func()
			reason string
		}{
			{"without user verification", func() { a.UserVerified = false }, "passkey not accepted"},
			{"from an authenticator Rampart does not know", func() {
				a = webauthntest.New(testOrigin)
				// A credential for this relying party and dave's handle,
				// never registered.
				opts, _ := e.ids.BeginWebAuthnRegistration(ctx, u, "sess", "Unfinished")
				if _, err := a.Create(opts); err != nil {
					t.Fatal(err)
				}
			}, "unknown passkey"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				tc.setup()
				opts, err := e.ids.BeginPasskeyLogin(ctx, "cookie", "192.0.2.7")
				if err != nil {
					t.Fatal(err)
				}
				resp, err := a.Get(opts)
				if err != nil {
					t.Fatal(err)
				}
				_, _, err = e.ids.FinishPasskeyLogin(ctx, "cookie", "192.0.2.7", resp)
				wantKind(t, err, apperr.Unauthenticated)
				got := e.audited(t, "user.login")
				if last := got[len(got)-1]; last.Outcome != audit.Failure || last.Details["reason"] != tc.reason {
					t.Errorf("last audited sign-in = %+v, want a failure for %q", last, tc.reason)
				}
			})
		}
		// Passkey sign-in needs a ceremony begun by this browser.
		if _, _, err := e.ids.FinishPasskeyLogin(ctx, "never-begun", "192.0.2.7", []byte("{}")); !apperr.Is(err, apperr.Unauthenticated) {
			t.Errorf("finish without begin: err = %v, want Unauthenticated", err)
		}
	}, audit.Migrations, Migrations)
}

// TestWebAuthn_PasskeyCeremoniesBounded: anyone may begin a passkey
// sign-in, so the number in progress is capped.
func TestWebAuthn_PasskeyCeremoniesBounded(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newMFAEnv(t, db, testPublicURL)
		ctx := t.Context()
		_, err := db.Exec(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
			INSERT INTO webauthn_ceremonies (key_hash, kind, data, expires_at) SELECT 'filler' || i, 'passkey', '{}', ? FROM n`,
			maxPasskeyCeremonies-1, store.Time(e.clock.Now().Add(time.Minute)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.ids.BeginPasskeyLogin(ctx, "last-one", "192.0.2.1"); err != nil {
			t.Fatalf("ceremony %d: %v", maxPasskeyCeremonies, err)
		}
		_, err = e.ids.BeginPasskeyLogin(ctx, "one-too-many", "192.0.2.1")
		wantKind(t, err, apperr.TooManyRequests)
		// Expired ones do not count, and are cleaned up.
		e.clock.Advance(ceremonyLifetime + time.Second)
		if _, err := e.ids.BeginPasskeyLogin(ctx, "later", "192.0.2.1"); err != nil {
			t.Fatalf("after the others expired: %v", err)
		}
		var left int
		if err := db.QueryRow(ctx, "SELECT COUNT(*) FROM webauthn_ceremonies").Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left != 1 {
			t.Errorf("%d ceremonies stored, want only the live one", left)
		}
	}, audit.Migrations, Migrations)
}

func TestWebAuthn_KeysPerUserBounded(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newMFAEnv(t, db, testPublicURL)
		u := e.user(t, "gina")
		// Two ceremonies begun before the last free slot is taken.
		a, b := webauthntest.New(testOrigin), webauthntest.New(testOrigin)
		for i := range MaxWebAuthnKeys - 1 {
			e.register(t, webauthntest.New(testOrigin), u, "sess", fmt.Sprintf("Key %d", i))
		}
		optsA, err := e.ids.BeginWebAuthnRegistration(t.Context(), u, "sess-a", "A")
		if err != nil {
			t.Fatal(err)
		}
		optsB, err := e.ids.BeginWebAuthnRegistration(t.Context(), u, "sess-b", "B")
		if err != nil {
			t.Fatal(err)
		}
		respA, _ := a.Create(optsA)
		respB, _ := b.Create(optsB)
		if _, _, err := e.ids.FinishWebAuthnRegistration(t.Context(), u, "sess-a", respA); err != nil {
			t.Fatal(err)
		}
		_, _, err = e.ids.FinishWebAuthnRegistration(t.Context(), u, "sess-b", respB)
		wantKind(t, err, apperr.Invalid)
		_, err = e.ids.BeginWebAuthnRegistration(t.Context(), u, "sess", "One more")
		wantKind(t, err, apperr.Invalid)
		if keys, _ := e.ids.WebAuthnKeys(t.Context(), u.ID); len(keys) != MaxWebAuthnKeys {
			t.Errorf("%d keys registered, want %d", len(keys), MaxWebAuthnKeys)
		}
	}, audit.Migrations, Migrations)
}

func TestWebAuthn_RegistrationRefused(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newMFAEnv(t, db, testPublicURL)
		ctx := t.Context()
		u := e.user(t, "erin")
		a := webauthntest.New(testOrigin)

		if _, err := e.ids.BeginWebAuthnRegistration(ctx, u, "sess", "bad\x00name"); !apperr.Is(err, apperr.Invalid) {
			t.Errorf("name with a control character: err = %v, want Invalid", err)
		}
		cases := []struct {
			name   string
			answer func(opts []byte) []byte
			want   apperr.Kind
		}{
			{"not JSON", func([]byte) []byte { return []byte("nope") }, apperr.Invalid},
			{"wrong challenge", func(opts []byte) []byte {
				resp, err := a.Create(withChallenge(t, opts, bytes.Repeat([]byte{2}, 32)))
				if err != nil {
					t.Fatal(err)
				}
				return resp
			}, apperr.Invalid},
			{"wrong relying party", func(opts []byte) []byte {
				resp, err := a.Create(bytes.Replace(opts, []byte(`"id":"rampart.example"`), []byte(`"id":"evil.example"`), 1))
				if err != nil {
					t.Fatal(err)
				}
				return resp
			}, apperr.Invalid},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				opts, err := e.ids.BeginWebAuthnRegistration(ctx, u, "sess", "Key")
				if err != nil {
					t.Fatal(err)
				}
				_, codes, err := e.ids.FinishWebAuthnRegistration(ctx, u, "sess", tc.answer(opts))
				wantKind(t, err, tc.want)
				if codes != nil {
					t.Errorf("refused registration returned recovery codes")
				}
				if st, _ := e.ids.MFAStatus(ctx, u.ID); st.WebAuthn != 0 || st.RecoveryLeft != 0 {
					t.Errorf("refused registration changed the MFA status: %+v", st)
				}
			})
		}
		if got := e.audited(t, "user.mfa.webauthn.register"); len(got) != 0 {
			t.Errorf("refused registrations were audited as registrations: %+v", got)
		}
	}, audit.Migrations, Migrations)
}

func TestWebAuthn_UnavailableWithoutHostName(t *testing.T) {
	cases := []struct{ name, url string }{
		{"no public URL", ""},
		{"IPv4 address", "http://127.0.0.1:8080"},
		{"IPv6 address", "http://[::1]:8080"},
		{"not http", "ftp://rampart.example"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.url
			e := newMFAEnv(t, storetest.OpenSQLite(t), url)
			if err := e.ids.DB().Migrate(t.Context(), audit.Migrations, Migrations); err != nil {
				t.Fatal(err)
			}
			if e.ids.WebAuthnAvailable() {
				t.Errorf("WebAuthnAvailable() = true")
			}
			u := e.user(t, "frank")
			_, err := e.ids.BeginWebAuthnRegistration(t.Context(), u, "sess", "Key")
			wantKind(t, err, apperr.Unavailable)
			_, err = e.ids.BeginPasskeyLogin(t.Context(), "cookie", "192.0.2.1")
			wantKind(t, err, apperr.Unavailable)
		})
	}
}

func TestNewRelyingParty_Origin(t *testing.T) {
	cases := []struct{ url, rpID, origin string }{
		{"https://rampart.example", "rampart.example", "https://rampart.example"},
		{"https://Rampart.Example:443/", "rampart.example", "https://rampart.example"},
		{"https://rampart.example:8443", "rampart.example", "https://rampart.example:8443"},
		{"http://localhost:8080", "localhost", "http://localhost:8080"},
	}
	for _, tc := range cases {
		rp, err := newRelyingParty(tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if rp.Config.RPID != tc.rpID || len(rp.Config.RPOrigins) != 1 || rp.Config.RPOrigins[0] != tc.origin {
			t.Errorf("%s: RP ID %q, origins %q; want %q, [%q]", tc.url, rp.Config.RPID, rp.Config.RPOrigins, tc.rpID, tc.origin)
		}
	}
}

// answer has the authenticator answer request options.
func answer(t *testing.T, a *webauthntest.Authenticator, opts []byte) []byte {
	t.Helper()
	resp, err := a.Get(opts)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// withChallenge replaces the challenge of ceremony options.
func withChallenge(t *testing.T, opts, challenge []byte) []byte {
	t.Helper()
	var o map[string]map[string]any
	if err := json.Unmarshal(opts, &o); err != nil {
		t.Fatal(err)
	}
	o["publicKey"]["challenge"] = base64.RawURLEncoding.EncodeToString(challenge)
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzParseAssertion feeds arbitrary answers to the sign-in parser: it
// never panics and refuses garbage as the user's fault, never as an
// internal error.
func FuzzParseAssertion(f *testing.F) {
	a := webauthntest.New(testOrigin)
	creation := `{"publicKey":{"challenge":"AAAAAAAAAAAAAAAAAAAAAA","rp":{"id":"rampart.example"},"user":{"id":"AAAAAAAAAAE"}}}`
	if _, err := a.Create([]byte(creation)); err != nil {
		f.Fatal(err)
	}
	good, err := a.Get([]byte(`{"publicKey":{"challenge":"AAAAAAAAAAAAAAAAAAAAAA","rpId":"rampart.example"}}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"id":"AA","rawId":"AA","type":"public-key","response":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseAssertion(b)
		if err != nil {
			if k := apperr.KindOf(err); k != apperr.Unauthenticated && k != apperr.TooLarge {
				t.Fatalf("parseAssertion error of kind %s: %v", k, err)
			}
			return
		}
		if len(p.RawID) == 0 {
			t.Fatalf("parsed an assertion without a credential id")
		}
	})
}

// FuzzParseAttestation does the same for registration answers.
func FuzzParseAttestation(f *testing.F) {
	a := webauthntest.New(testOrigin)
	good, err := a.Create([]byte(`{"publicKey":{"challenge":"AAAAAAAAAAAAAAAAAAAAAA","rp":{"id":"rampart.example"},"user":{"id":"AAAAAAAAAAE"},"extensions":{"credProps":true}}}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"id":"AA","rawId":"AA","type":"public-key","response":{"attestationObject":"oA"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseAttestation(b)
		if err != nil {
			if k := apperr.KindOf(err); k != apperr.Invalid && k != apperr.TooLarge {
				t.Fatalf("parseAttestation error of kind %s: %v", k, err)
			}
			return
		}
		if len(p.RawID) == 0 {
			t.Fatalf("parsed an attestation without a credential id")
		}
	})
}
