package realm_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/identity/realm"
	"github.com/rampartsec/rampart/internal/smtptest"
)

// TestMail_Delivery sends verification mail through servers that take
// credentials, refuse recipients, or lack STARTTLS: a failed delivery
// tells the user to try later, keeps no half-made account, and never
// shows the SMTP password.
func TestMail_Delivery(t *testing.T) {
	const smtpPass = "smtp-password-not-for-logs"
	w := newWorld(t)
	withAuth := smtptest.Start(t, smtptest.WithAuth("mailer", smtpPass))
	refusing := smtptest.Start(t, smtptest.Refusing())
	plain := smtptest.Start(t)
	pw := func(s string) *string { return &s }
	cases := []struct {
		name string
		smtp realm.SMTPJSON
		sink *smtptest.Server
		ok   bool
	}{
		{"credentials", realm.SMTPJSON{Host: withAuth.Host(), Port: withAuth.Port(), TLS: realm.TLSNone, Username: "mailer", Password: pw(smtpPass)}, withAuth, true},
		{"wrong credentials", realm.SMTPJSON{Host: withAuth.Host(), Port: withAuth.Port(), TLS: realm.TLSNone, Username: "mailer", Password: pw("wrong-" + smtpPass)}, withAuth, false},
		{"recipient refused", realm.SMTPJSON{Host: refusing.Host(), Port: refusing.Port(), TLS: realm.TLSNone, Password: pw("")}, refusing, false},
		{"STARTTLS required but not offered", realm.SMTPJSON{Host: plain.Host(), Port: plain.Port(), TLS: realm.TLSStartTLS}, plain, false},
		{"nobody listening", realm.SMTPJSON{Host: "127.0.0.1", Port: 1, TLS: realm.TLSNone}, nil, false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w.admin.Must(http.StatusOK, "PUT", httpapi.Prefix+"/orgs/shop/realm", realm.RealmRequest{SMTP: tc.smtp})
			before := w.realmState(t)
			var sent int
			if tc.sink != nil {
				sent = len(tc.sink.Messages())
			}
			email := "user" + string(rune('a'+i)) + "@example.com"
			p := w.browser(t).submit(realm.AuthPrefix+"register", url.Values{"email": {email}, "password": {password}})
			if strings.Contains(p.body, smtpPass) {
				t.Errorf("page shows the SMTP password")
			}
			if tc.ok {
				if p.status != http.StatusOK || tc.sink == nil || len(tc.sink.Messages()) != sent+1 {
					t.Fatalf("= %d, want 200 and a mail: %s", p.status, p.body)
				}
				if m := tc.sink.Messages()[sent]; m.User != "mailer" || m.To[0] != email {
					t.Errorf("mail as %q to %v", m.User, m.To)
				}
				return
			}
			if p.status != http.StatusServiceUnavailable || !strings.Contains(errorOf(p), "could not be sent") {
				t.Errorf("= %d %q, want 503 saying the mail could not be sent", p.status, errorOf(p))
			}
			w.realmUnchanged(t, before)
		})
	}
}
