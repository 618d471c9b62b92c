package realm_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/identity/realm"
)

// auditedVerifications counts the realm.user.verify entries with outcome
// and, when reason is not empty, that reason ("wrong password", "locked").
func auditedVerifications(t *testing.T, w *world, outcome, reason string) int {
	t.Helper()
	n := 0
	for _, e := range w.a.AuditSince(t, 0) {
		if e.Action == "realm.user.verify" && e.Outcome == outcome && (reason == "" || fmt.Sprint(e.Details["reason"]) == reason) {
			n++
		}
	}
	return n
}

func auditedAction(t *testing.T, w *world, action string) int {
	t.Helper()
	n := 0
	for _, e := range w.a.AuditSince(t, 0) {
		if e.Action == action {
			n++
		}
	}
	return n
}

// TestVerify_ConcurrentWrongPasswordsStopAtFive: the confirmation page of
// a registration asks for the password typed at that registration; it
// must not be a way to guess it. Sixty wrong passwords sent at once on
// one link get at most five checked (each audited as a failed
// confirmation; the fifth locks the link, audited realm.user.verify.lock),
// the others are refused with 429 unchecked. The right password is then
// refused until the lock ends, and confirms the address after fifteen
// minutes.
//
// Before the fix every guess was checked: sixty answers "not the
// password chosen", none audited, and no lock.
func TestVerify_ConcurrentWrongPasswordsStopAtFive(t *testing.T) {
	eachStore(t, func(t *testing.T, store apptest.Option) {
		w := newWorld(t, withStore(store))
		owner := w.browser(t)
		link := owner.register("frank@example.com")
		u, err := url.Parse(link)
		if err != nil {
			t.Fatal(err)
		}
		token := u.Query().Get("token")

		const n = 60
		guesser := w.browser(t)
		csrf := guesser.csrfOn(u.RequestURI())
		status := concurrently(n, func(int) *browser { return guesser }, realm.AuthPrefix+"verify", func(i int) url.Values {
			return url.Values{"csrf_token": {csrf}, "token": {token}, "password": {fmt.Sprintf("wrong password %d", i)}}
		})
		counts := tally(status)
		if counts[http.StatusBadRequest]+counts[http.StatusTooManyRequests] != n {
			t.Fatalf("answers %v, want only 400 and 429", counts)
		}
		if counts[http.StatusBadRequest] >= allowedFailures {
			t.Errorf("%d concurrent wrong passwords were answered 400 (checked), want fewer than %d: the fifth locks (answers %v)",
				counts[http.StatusBadRequest], allowedFailures, counts)
		}
		if checked := auditedVerifications(t, w, "failure", "wrong password"); checked < 1 || checked > allowedFailures {
			t.Errorf("%d failed confirmations audited, want 1 to %d (every checked guess, no more)", checked, allowedFailures)
		}
		if locks := auditedAction(t, w, "realm.user.verify.lock"); locks != 1 {
			t.Errorf("%d realm.user.verify.lock entries, want 1", locks)
		}

		if p := owner.confirm(link); p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" {
			t.Errorf("right password while the link is locked = %d (Retry-After %q) %q, want 429", p.status, p.header.Get("Retry-After"), errorOf(p))
		}
		if denied := auditedVerifications(t, w, "denied", "locked"); denied == 0 {
			t.Errorf("attempts refused while locked are not audited")
		}
		w.clock.Advance(lockTime + time.Second)
		if p := owner.confirm(link); p.status != http.StatusOK || !strings.Contains(p.body, "frank@example.com is confirmed") {
			t.Errorf("right password after the lock = %d %q, want 200", p.status, errorOf(p))
		}
	})
}

// TestVerify_LockIsPerRegistration: five wrong passwords in a row on one
// registration's link lock that link for fifteen minutes (the fifth
// answers 429 with Retry-After and keeps the form); the link of another
// registration of the same address keeps working, and four failures
// followed by the right password confirm.
func TestVerify_LockIsPerRegistration(t *testing.T) {
	eachStore(t, func(t *testing.T, store apptest.Option) {
		w := newWorld(t, withStore(store))
		b := w.browser(t)
		first := b.register("gina@example.com")
		w.clock.Advance(61 * time.Second) // past the one-mail-a-minute gap
		second := b.register("gina@example.com")

		for i := range allowedFailures {
			p := b.confirmWith(first, fmt.Sprintf("wrong password %d", i))
			want := http.StatusBadRequest
			if i == allowedFailures-1 {
				want = http.StatusTooManyRequests
			}
			if p.status != want {
				t.Fatalf("wrong password %d = %d %q, want %d", i+1, p.status, errorOf(p), want)
			}
			if want == http.StatusTooManyRequests {
				if p.header.Get("Retry-After") == "" || !strings.Contains(errorOf(p), "15 minutes") || !strings.Contains(p.body, `id="confirm"`) {
					t.Errorf("lock answer: Retry-After %q, %q, form shown %v", p.header.Get("Retry-After"), errorOf(p), strings.Contains(p.body, `id="confirm"`))
				}
			}
		}
		if p := b.confirm(first); p.status != http.StatusTooManyRequests {
			t.Errorf("right password on the locked link = %d %q, want 429", p.status, errorOf(p))
		}
		for i := range allowedFailures - 1 {
			if p := b.confirmWith(second, fmt.Sprintf("other wrong password %d", i)); p.status != http.StatusBadRequest {
				t.Fatalf("wrong password %d on the other link = %d %q, want 400", i+1, p.status, errorOf(p))
			}
		}
		if p := b.confirm(second); p.status != http.StatusOK || !strings.Contains(p.body, "gina@example.com is confirmed") {
			t.Fatalf("right password on the other registration's link = %d %q, want 200", p.status, errorOf(p))
		}
		if p := b.signIn("gina@example.com", password); p.status != http.StatusSeeOther {
			t.Errorf("sign-in after confirming = %d %q, want 303", p.status, errorOf(p))
		}
	})
}
