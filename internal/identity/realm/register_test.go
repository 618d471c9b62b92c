package realm_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/identity/realm"
)

// attackerPassword is what a stranger registers someone else's address
// with.
const attackerPassword = "attacker chosen password 1"

// registerAs posts the registration form for email with pw and returns
// the verification link mailed for it (to the address's owner).
func (b *browser) registerAs(email, pw string) string {
	b.t.Helper()
	p := b.submit(realm.AuthPrefix+"register", url.Values{"email": {email}, "password": {pw}})
	if p.status != http.StatusOK || !strings.Contains(p.body, "Check your inbox") {
		b.t.Fatalf("register %s = %d: %s", email, p.status, p.body)
	}
	link := linkRE.FindString(b.w.sink.Next(b.t, 10*time.Second).Body)
	if link == "" {
		b.t.Fatalf("no verification link mailed to %s", email)
	}
	return link
}

// TestRegister_AgainDoesNotTakeOverPendingAccount: while carol's
// registration waits for her to confirm, a stranger registers her address
// again with their own password. The registration page answers as usual
// and carol gets a second link, but the stranger's password never
// becomes hers: following that newest link with her own password is
// refused and leaves the account unconfirmed, the stranger's password
// does not sign in, and her own link still confirms her own password.
//
// Before the fix the second registration replaced the pending account's
// password, so carol confirming the newest link handed the account to
// the stranger, who then enrolled their own second factor and reached
// the application as carol.
func TestRegister_AgainDoesNotTakeOverPendingAccount(t *testing.T) {
	w := newWorld(t)
	carol := w.browser(t)
	own := carol.register("carol@example.com")

	w.clock.Advance(61 * time.Second) // past the one-mail-a-minute gap
	stranger := w.browser(t)
	newest := stranger.registerAs("carol@example.com", attackerPassword)

	// Carol follows the newest link with her password: that link was
	// asked for with another password, so the address stays unconfirmed.
	p := carol.confirmWith(newest, password)
	if p.status != http.StatusBadRequest || !strings.Contains(errorOf(p), "not the password chosen") {
		t.Errorf("carol confirms the stranger's link with her password = %d %q, want 400", p.status, errorOf(p))
	}
	if p := stranger.signIn("carol@example.com", attackerPassword); p.status == http.StatusSeeOther {
		stranger.enrol()
		hits := w.backend.count()
		if p := stranger.do("GET", "/", nil); p.status == http.StatusOK && w.backend.count() > hits {
			t.Fatalf("the stranger reached the application as carol@example.com: %s", p.body)
		}
		t.Fatalf("the stranger signed in as carol@example.com with their own password")
	} else if p.status != http.StatusUnauthorized && p.status != http.StatusForbidden {
		t.Errorf("stranger's sign-in = %d %q, want 401 or 403", p.status, errorOf(p))
	}

	// Her own link confirms the password she chose.
	if p := carol.confirm(own); p.status != http.StatusOK || !strings.Contains(p.body, "carol@example.com is confirmed") {
		t.Fatalf("carol confirms her own link = %d %q", p.status, errorOf(p))
	}
	if p := stranger.signIn("carol@example.com", attackerPassword); p.status != http.StatusUnauthorized {
		t.Errorf("stranger's password after carol confirmed = %d %q, want 401", p.status, errorOf(p))
	}
	if p := carol.signIn("carol@example.com", password); p.status != http.StatusSeeOther {
		t.Errorf("carol's sign-in = %d %q, want 303", p.status, errorOf(p))
	}
	// The stranger's link died with the confirmation.
	if p := stranger.confirmWith(newest, attackerPassword); p.status != http.StatusBadRequest || !strings.Contains(errorOf(p), "already used") {
		t.Errorf("stranger's link after carol confirmed = %d %q, want 400", p.status, errorOf(p))
	}
}

// TestRegister_StrangerFirstDoesNotDecidePassword: a stranger registers
// dora's address before she does. When dora registers herself and
// confirms the link of her own registration, the account has her
// password, not the stranger's; the stranger's earlier link, followed by
// dora with her password, confirms nothing.
func TestRegister_StrangerFirstDoesNotDecidePassword(t *testing.T) {
	w := newWorld(t)
	stranger := w.browser(t)
	early := stranger.registerAs("dora@example.com", attackerPassword)

	w.clock.Advance(61 * time.Second)
	dora := w.browser(t)
	own := dora.register("dora@example.com")

	if p := dora.confirmWith(early, password); p.status != http.StatusBadRequest {
		t.Errorf("dora confirms the stranger's link with her password = %d %q, want 400", p.status, errorOf(p))
	}
	if p := dora.confirm(own); p.status != http.StatusOK {
		t.Fatalf("dora confirms her own link = %d %q", p.status, errorOf(p))
	}
	if p := stranger.signIn("dora@example.com", attackerPassword); p.status != http.StatusUnauthorized {
		t.Errorf("stranger's sign-in = %d %q, want 401", p.status, errorOf(p))
	}
	if p := dora.signIn("dora@example.com", password); p.status != http.StatusSeeOther {
		t.Errorf("dora's sign-in = %d %q, want 303", p.status, errorOf(p))
	}
}

// TestRegister_ConfirmAsksForThePassword: a verification link confirms
// the address only with the password typed at the registration that
// mailed it. A wrong one shows the form again with the link still
// usable.
func TestRegister_ConfirmAsksForThePassword(t *testing.T) {
	w := newWorld(t)
	b := w.browser(t)
	link := b.register("erin@example.com")
	p := b.confirmWith(link, "not what erin typed")
	if p.status != http.StatusBadRequest || !strings.Contains(errorOf(p), "not the password chosen") || !strings.Contains(p.body, `id="confirm"`) {
		t.Errorf("confirm with a wrong password = %d %q, want 400 and the form again", p.status, errorOf(p))
	}
	if p := b.signIn("erin@example.com", password); p.status != http.StatusForbidden {
		t.Errorf("sign-in after a refused confirmation = %d %q, want 403 (unconfirmed)", p.status, errorOf(p))
	}
	if p := b.confirm(link); p.status != http.StatusOK {
		t.Errorf("confirm with the right password = %d %q, want 200", p.status, errorOf(p))
	}
}
