package identity_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/identity"
)

func TestSessions_PendingThenActive(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		bob := e.user(t, "bob")
		pending, err := e.ids.StartSession(ctx, bob.ID, identity.SessionPending, []string{identity.AMRPassword}, ipA, "test-agent")
		if err != nil {
			t.Fatal(err)
		}
		if len(pending.Raw) != 43 || len(pending.CSRF) != 32 || pending.Raw == pending.CSRF {
			t.Fatalf("session id %q, csrf %q", pending.Raw, pending.CSRF)
		}
		sum := sha256.Sum256([]byte(pending.Raw))
		if pending.IDHash != hex.EncodeToString(sum[:]) || e.count(t, "SELECT COUNT(*) FROM sessions WHERE id_hash = ?", pending.Raw) != 0 {
			t.Fatal("the session id is stored in clear")
		}
		if !pending.ExpiresAt.Equal(e.clock.Now().Add(10 * time.Minute)) {
			t.Errorf("pending session expires at %v, want in 10 minutes", pending.ExpiresAt)
		}

		// A pending session is found as pending: it authenticates nothing
		// until the second factor.
		got, u, err := e.ids.Session(ctx, pending.Raw)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != identity.SessionPending || u.ID != bob.ID || got.MFA() {
			t.Errorf("pending session %+v for %s", got, u.Username)
		}

		e.clock.Advance(3 * time.Minute)
		active, err := e.ids.ActivateSession(ctx, got, identity.AMROTP)
		if err != nil {
			t.Fatal(err)
		}
		// Activation rotates the id: the pre-authentication cookie is dead.
		if active.Raw == pending.Raw || active.IDHash == pending.IDHash {
			t.Fatal("ActivateSession kept the session id")
		}
		_, _, err = e.ids.Session(ctx, pending.Raw)
		wantKind(t, err, apperr.Unauthenticated)
		got, _, err = e.ids.Session(ctx, active.Raw)
		if err != nil {
			t.Fatal(err)
		}
		want := identity.Session{Raw: active.Raw, IDHash: active.IDHash, UserID: bob.ID, State: identity.SessionActive,
			AMR: []string{identity.AMRPassword, identity.AMROTP}, AuthTime: e.clock.Now(), CreatedAt: pending.CreatedAt,
			LastSeenAt: e.clock.Now(), ExpiresAt: e.clock.Now().Add(sessionAbsolute), CSRF: pending.CSRF, RemoteIP: ipA, UserAgent: "test-agent"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("active session (-want +got):\n%s", diff)
		}
		if !got.MFA() {
			t.Error("a session with an OTP is not MFA")
		}
		list, err := e.ids.Sessions(ctx, bob.ID)
		if err != nil || len(list) != 1 || list[0].IDHash != active.IDHash {
			t.Errorf("Sessions = %+v, %v", list, err)
		}
		// The old id cannot be activated again.
		_, err = e.ids.ActivateSession(ctx, pending)
		wantKind(t, err, apperr.Unauthenticated)

		if err := e.ids.EndSession(ctx, got); err != nil {
			t.Fatal(err)
		}
		_, _, err = e.ids.Session(ctx, active.Raw)
		wantKind(t, err, apperr.Unauthenticated)
		if ent := e.lastAudit(t); ent.Action != "user.logout" || ent.ActorName != "bob" {
			t.Errorf("audit entry %+v", ent)
		}
	})
}

func TestSessions_PendingExpiresAfterTenMinutes(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		bob := e.user(t, "bob")
		s, err := e.ids.StartSession(ctx, bob.ID, identity.SessionPending, []string{identity.AMRPassword}, ipA, "")
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(10*time.Minute + time.Second)
		_, _, err = e.ids.Session(ctx, s.Raw)
		wantKind(t, err, apperr.Unauthenticated)
		if n := e.count(t, "SELECT COUNT(*) FROM sessions"); n != 0 {
			t.Errorf("expired session still stored (%d rows)", n)
		}
	})
}

func TestSessions_IdleTimeout(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		bob := e.user(t, "bob")
		s, err := e.ids.StartSession(ctx, bob.ID, identity.SessionActive, []string{identity.AMRPassword}, ipA, "")
		if err != nil {
			t.Fatal(err)
		}
		// Activity keeps it alive past the idle timeout ...
		for range 3 {
			e.clock.Advance(sessionIdle - time.Minute)
			if _, _, err := e.ids.Session(ctx, s.Raw); err != nil {
				t.Fatalf("active use within the idle timeout: %v", err)
			}
		}
		// ... and a pause longer than it ends it.
		e.clock.Advance(sessionIdle + time.Second)
		_, _, err = e.ids.Session(ctx, s.Raw)
		if apperr.KindOf(err) != apperr.Unauthenticated || !strings.Contains(err.Error(), "expired") {
			t.Fatalf("after the idle timeout: %v", err)
		}
	})
}

func TestSessions_AbsoluteTimeout(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		bob := e.user(t, "bob")
		s, err := e.ids.StartSession(ctx, bob.ID, identity.SessionActive, []string{identity.AMRPassword}, ipA, "")
		if err != nil {
			t.Fatal(err)
		}
		// Used every hour, it still ends a day after sign-in.
		for h := 1; h < 24; h++ {
			e.clock.Advance(time.Hour)
			if _, _, err := e.ids.Session(ctx, s.Raw); err != nil {
				t.Fatalf("after %dh: %v", h, err)
			}
		}
		e.clock.Advance(time.Hour + time.Second)
		_, _, err = e.ids.Session(ctx, s.Raw)
		wantKind(t, err, apperr.Unauthenticated)

		// Expired sessions are purged by housekeeping.
		if _, err := e.ids.StartSession(ctx, bob.ID, identity.SessionActive, nil, ipA, ""); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(sessionAbsolute + time.Second)
		if n, err := e.ids.PurgeExpiredSessions(ctx); err != nil || n != 1 {
			t.Errorf("PurgeExpiredSessions = %d, %v; want 1", n, err)
		}
	})
}

func TestSessions_DisabledUser(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		bob := e.user(t, "bob")
		s, err := e.ids.StartSession(ctx, bob.ID, identity.SessionActive, []string{identity.AMRPassword}, ipA, "")
		if err != nil {
			t.Fatal(err)
		}
		// Marked disabled behind the service's back: the lookup still
		// refuses the session.
		if _, err := e.db.Exec(ctx, "UPDATE users SET disabled = TRUE WHERE id = ?", bob.ID); err != nil {
			t.Fatal(err)
		}
		_, _, err = e.ids.Session(ctx, s.Raw)
		if apperr.KindOf(err) != apperr.Unauthenticated || !strings.Contains(err.Error(), "disabled") {
			t.Fatalf("session of a disabled user: %v", err)
		}
		// Disabling through the service ends every session of the user.
		if _, err := e.db.Exec(ctx, "UPDATE users SET disabled = FALSE WHERE id = ?", bob.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.ids.StartSession(ctx, bob.ID, identity.SessionActive, nil, ipB, ""); err != nil {
			t.Fatal(err)
		}
		if err := e.ids.SetDisabled(ctx, bob.ID, true); err != nil {
			t.Fatal(err)
		}
		if n := e.count(t, "SELECT COUNT(*) FROM sessions WHERE user_id = ?", bob.ID); n != 0 {
			t.Errorf("%d sessions left after disabling", n)
		}
	})
}

func TestSessions_RejectsJunkIDs(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		for _, raw := range []string{"", "x", strings.Repeat("a", 129), "' OR 1=1 --"} {
			_, _, err := e.ids.Session(t.Context(), raw)
			wantKind(t, err, apperr.Unauthenticated)
		}
	})
}
