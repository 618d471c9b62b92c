package alerts_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/alerts"
	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/boards"
	"github.com/rampartsec/rampart/internal/scan"
)

func TestLifecycle(t *testing.T) {
	each(t, alerts.Limits{}, func(t *testing.T, e *env) {
		ctx := as(t.Context(), e.alice)
		c1 := e.repo.commit("main", "first", map[string]string{
			"config/prod.env": "# production\n" + awsKey(1) + "\n",
			"Dockerfile":      dockerfile,
			"go.mod":          goMod("1.1.0"),
		})
		e.push(t, "main", c1)
		all := e.all(t)
		if len(all["secret"]) != 1 || len(all["vulnerability"]) != 1 || len(all["misconfiguration"]) == 0 {
			t.Fatalf("alerts after the first push: %d secret, %d vulnerability, %d misconfiguration",
				len(all["secret"]), len(all["vulnerability"]), len(all["misconfiguration"]))
		}
		secret, vuln := e.one(t, "secret"), e.one(t, "vulnerability")
		if secret.Path != "config/prod.env" || secret.Line != 2 || secret.RuleID != "aws-access-key-id" || secret.State != alerts.StateOpen ||
			secret.FirstCommit != c1 || secret.Finding.Secret == nil || strings.Contains(secret.Finding.Secret.Redacted, awsKey(1)[22:]) {
			t.Errorf("secret alert = %+v", secret)
		}
		if vuln.RuleID != "GO-2099-0001" || vuln.Path != "go.mod" || vuln.Finding.Vuln == nil || vuln.Finding.Vuln.FixedVersion != "1.2.0" {
			t.Errorf("vulnerability alert = %+v", vuln)
		}
		opened, payload := e.published(t, alerts.EventOpened)
		total := 0
		for _, as := range all {
			total += len(as)
		}
		if opened != total {
			t.Errorf("%d alerts.opened events for %d alerts", opened, total)
		}
		var ev alerts.Event
		if err := json.Unmarshal([]byte(payload), &ev); err != nil || ev.Repo != "acme/shop" || ev.Org != "acme" || ev.Fingerprint == "" ||
			ev.AlertID == 0 || ev.Commit != c1 || ev.State != "open" || !strings.HasPrefix(ev.URL, "https://rampart.example/orgs/acme/alerts/") {
			t.Errorf("alerts.opened payload %s (%v)", payload, err)
		}

		// The same push delivered again changes nothing.
		e.push(t, "main", c1)
		if again, _ := e.published(t, alerts.EventOpened); again != opened {
			t.Errorf("a redelivered push published %d more alerts.opened", again-opened)
		}
		if n := len(e.all(t)["secret"]); n != 1 {
			t.Errorf("%d secret alerts after a redelivered push", n)
		}

		// A maintainer dismisses the secret: a reason and a comment are
		// needed.
		_, err := e.svc.Dismiss(ctx, e.acme, secret.ID, "not-a-reason", "x")
		wantKind(t, err, apperr.Invalid)
		_, err = e.svc.Dismiss(ctx, e.acme, secret.ID, alerts.FalsePositive, "   ")
		wantKind(t, err, apperr.Invalid)
		_, err = e.svc.Dismiss(ctx, e.acme, secret.ID, alerts.FalsePositive, strings.Repeat("x", alerts.MaxComment+1))
		wantKind(t, err, apperr.Invalid)
		_, err = e.svc.Dismiss(ctx, e.acme, secret.ID, alerts.FalsePositive, "bad\x00comment")
		wantKind(t, err, apperr.Invalid)
		d, err := e.svc.Dismiss(ctx, e.acme, secret.ID, "won't fix", "Rotated already; the key is dead.")
		if err != nil {
			t.Fatal(err)
		}
		if d.State != alerts.StateDismissed || d.DismissedReason != alerts.WontFix || d.DismissedBy != "alice" {
			t.Errorf("dismissed alert = %+v", d)
		}
		_, err = e.svc.Dismiss(ctx, e.acme, secret.ID, alerts.WontFix, "again")
		wantKind(t, err, apperr.Conflict)
		es, err := e.audit.List(t.Context(), audit.Filter{Action: "alert.dismiss"})
		if err != nil || len(es) != 1 {
			t.Fatalf("alert.dismiss audit entries: %v, %v", es, err)
		}
		if en := es[0]; en.ActorName != "alice" || en.OrgID != e.acme.ID || en.TargetID != itoa(secret.ID) ||
			en.Details["reason"] != "wont_fix" || en.Details["comment"] != "Rotated already; the key is dead." ||
			en.Details["rule"] != "aws-access-key-id" || en.Details["fingerprint"] != secret.Fingerprint {
			t.Errorf("audit entry = %+v", en)
		}
		if n, _ := e.published(t, alerts.EventDismissed); n != 1 {
			t.Errorf("%d alerts.dismissed events", n)
		}

		// The dependency is upgraded: its alert is fixed by that commit;
		// the dismissed secret stays dismissed.
		e.clock.Advance(time.Hour)
		c2 := e.repo.commit("main", "upgrade vulnlib", map[string]string{"go.mod": goMod("1.2.0")})
		e.push(t, "main", c2)
		v := e.one(t, "vulnerability")
		if v.State != alerts.StateFixed || v.FixedCommit != c2 || !v.FixedAt.Equal(e.clock.Now()) {
			t.Errorf("after the upgrade: %+v", v)
		}
		if s := e.one(t, "secret"); s.State != alerts.StateDismissed || s.LastCommit != c2 {
			t.Errorf("the dismissed secret after a scan that still finds it: %+v", s)
		}
		for _, m := range e.all(t)["misconfiguration"] {
			if m.State != alerts.StateOpen || m.LastCommit != c2 || m.FirstCommit != c1 {
				t.Errorf("misconfiguration after the second scan: %+v", m)
			}
		}
		if n, p := e.published(t, alerts.EventFixed); n != 1 || !strings.Contains(p, `"fingerprint":"`+v.Fingerprint+`"`) || !strings.Contains(p, c2) {
			t.Errorf("%d alerts.fixed events, last %s", n, p)
		}

		// A feature branch brings the old version back: not the default
		// branch, not scanned.
		c3 := e.repo.commit("feature", "downgrade", map[string]string{"go.mod": goMod("1.1.0")})
		e.push(t, "feature", c3)
		if v := e.one(t, "vulnerability"); v.State != alerts.StateFixed {
			t.Errorf("a feature-branch push changed the alert to %s", v.State)
		}
		// Merged into main: the fixed alert comes back, reopened.
		e.clock.Advance(time.Hour)
		e.push(t, "main", c3)
		v = e.one(t, "vulnerability")
		if v.State != alerts.StateOpen || v.Reopened != 1 || !v.FixedAt.IsZero() || v.ID != vuln.ID || !v.OpenedAt.Equal(e.clock.Now()) {
			t.Errorf("after the vulnerability came back: %+v", v)
		}
		if _, p := e.published(t, alerts.EventOpened); !strings.Contains(p, `"reopened":true`) {
			t.Errorf("the last alerts.opened does not say reopened: %s", p)
		}

		// The key is removed: the dismissed alert stays dismissed. Reopened
		// by hand, the next scan finds it gone and fixes it.
		c4 := e.repo.commit("main", "remove the key", map[string]string{"config/prod.env": ""})
		e.push(t, "main", c4)
		if s := e.one(t, "secret"); s.State != alerts.StateDismissed {
			t.Errorf("the dismissed secret became %s when the key was removed", s.State)
		}
		r, err := e.svc.Reopen(ctx, e.acme, secret.ID)
		if err != nil || r.State != alerts.StateOpen || r.DismissedReason != "" {
			t.Fatalf("reopen: %+v, %v", r, err)
		}
		_, err = e.svc.Reopen(ctx, e.acme, secret.ID)
		wantKind(t, err, apperr.Conflict)
		c5 := e.repo.commit("main", "docs", map[string]string{"README.md": "# shop\n"})
		e.push(t, "main", c5)
		if s := e.one(t, "secret"); s.State != alerts.StateFixed || s.FixedCommit != c5 {
			t.Errorf("the reopened secret after a scan without it: %+v", s)
		}
		_, err = e.svc.Dismiss(ctx, e.acme, secret.ID, alerts.FalsePositive, "fixed alerts are not dismissed")
		wantKind(t, err, apperr.Conflict)

		// The repository's scans are recorded.
		st, err := e.svc.RepoByName(t.Context(), e.acme, "shop")
		if err != nil || st.LastCommit != c5 || st.DefaultBranch != "refs/heads/main" || st.LastError != "" || st.Scans < 5 {
			t.Errorf("repository status = %+v, %v", st, err)
		}
	})
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestIgnoreFile(t *testing.T) {
	each(t, alerts.Limits{}, func(t *testing.T, e *env) {
		c1 := e.repo.commit("main", "first", map[string]string{
			"Dockerfile":              dockerfile,
			"testdata/fixture.env":    awsKey(2) + "\n",
			".rampart/ignore.yaml":    "suppressions:\n  - paths: [\"testdata/**\"]\n    reason: test fixtures\n",
			"deploy/other/Dockerfile": dockerfile,
		})
		e.push(t, "main", c1)
		all := e.all(t)
		if len(all["secret"]) != 0 {
			t.Errorf("a suppressed secret opened an alert: %+v", all["secret"])
		}
		before := len(all["misconfiguration"])
		if before == 0 {
			t.Fatal("no misconfiguration alerts")
		}
		// Now suppress deploy/**: its alerts are neither fixed nor
		// opened; they stay as they were.
		c2 := e.repo.commit("main", "suppress deploy", map[string]string{
			".rampart/ignore.yaml": "suppressions:\n  - paths: [\"testdata/**\", \"deploy/**\"]\n    reason: not ours\n",
		})
		e.push(t, "main", c2)
		for _, a := range e.all(t)["misconfiguration"] {
			if a.State != alerts.StateOpen {
				t.Errorf("alert %s in %s became %s when suppressed", a.RuleID, a.Path, a.State)
			}
		}
		// A broken ignore file is reported, not fatal.
		c3 := e.repo.commit("main", "break it", map[string]string{".rampart/ignore.yaml": "suppressions: [{id: x}]\n"})
		res, err := e.svc.ScanCommit(t.Context(), alerts.Repo{ID: repoID, Name: "acme/shop", Org: e.acme, Ref: "refs/heads/main"}, c3)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(res.Notes, func(n string) bool { return strings.Contains(n, ".rampart/ignore.yaml was not applied") }) {
			t.Errorf("notes = %q", res.Notes)
		}
		if len(e.all(t)["secret"]) != 1 {
			t.Errorf("without the ignore file the fixture's key is not an alert")
		}
	})
}

func TestWorkItemFromAlert(t *testing.T) {
	each(t, alerts.Limits{}, func(t *testing.T, e *env) {
		ctx := as(t.Context(), e.alice)
		e.push(t, "main", e.repo.commit("main", "first", map[string]string{"config/prod.env": awsKey(3) + "\n"}))
		a := e.one(t, "secret")
		got, w, err := e.svc.CreateWorkItem(ctx, e.acme, a.ID, alerts.NewWorkItem{})
		if err != nil {
			t.Fatal(err)
		}
		if got.WorkItem != w.Number || w.Type != boards.TypeBug || w.Priority != 2 ||
			!strings.Contains(w.Title, "aws") && !strings.Contains(w.Title, "AWS") || !strings.Contains(w.Description, "config/prod.env line 1") {
			t.Errorf("work item %+v from alert %+v", w, got)
		}
		// Linked both ways.
		if stored, _ := e.svc.Get(t.Context(), e.acme, a.ID); stored.WorkItem != w.Number {
			t.Errorf("the alert links AB#%d, want %s", stored.WorkItem, w.Ref())
		}
		links, err := e.boards.Links(t.Context(), w)
		if err != nil || len(links) != 1 || links[0].Kind != boards.LinkAlert || links[0].Ref != itoa(a.ID) ||
			links[0].URL != "https://rampart.example/orgs/acme/alerts/"+itoa(a.ID) {
			t.Errorf("the work item's links: %+v, %v", links, err)
		}
		// One work item per alert at a time.
		_, _, err = e.svc.CreateWorkItem(ctx, e.acme, a.ID, alerts.NewWorkItem{})
		wantKind(t, err, apperr.Conflict)
		// Bad input changes nothing.
		_, _, err = e.svc.CreateWorkItem(ctx, e.acme, 999, alerts.NewWorkItem{})
		wantKind(t, err, apperr.NotFound)
		if err := e.boards.Delete(ctx, e.acme, w.Number); err != nil {
			t.Fatal(err)
		}
		_, _, err = e.svc.CreateWorkItem(ctx, e.acme, a.ID, alerts.NewWorkItem{Assignee: "nobody"})
		wantKind(t, err, apperr.Invalid)
		if stored, _ := e.svc.Get(t.Context(), e.acme, a.ID); stored.WorkItem != w.Number {
			t.Errorf("a refused work item changed the alert's link to AB#%d", stored.WorkItem)
		}
		// The old item is gone: a new one can be made.
		_, w2, err := e.svc.CreateWorkItem(ctx, e.acme, a.ID, alerts.NewWorkItem{Type: boards.TypeTask})
		if err != nil || w2.Number == w.Number || w2.Type != boards.TypeTask {
			t.Errorf("second work item: %+v, %v", w2, err)
		}
		// Another org cannot reach the alert.
		globex, err := e.ids.CreateOrg(t.Context(), e.alice.ID, "globex", "")
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = e.svc.CreateWorkItem(ctx, globex, a.ID, alerts.NewWorkItem{})
		wantKind(t, err, apperr.NotFound)
		_, err = e.svc.Dismiss(ctx, globex, a.ID, alerts.FalsePositive, "not yours")
		wantKind(t, err, apperr.NotFound)
	})
}

func TestOverview(t *testing.T) {
	each(t, alerts.Limits{}, func(t *testing.T, e *env) {
		start := e.clock.Now()
		e.push(t, "main", e.repo.commit("main", "old", map[string]string{"go.mod": goMod("1.0.0")}))
		e.clock.Advance(40 * 24 * time.Hour)
		e.push(t, "main", e.repo.commit("main", "newer", map[string]string{"a.env": awsKey(4) + "\n"}))
		e.clock.Advance(2 * 24 * time.Hour)
		ov, err := e.svc.Overview(t.Context(), e.acme)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int{0, 2, 0, 0, 0, 0}, ov.BySeverity); ov.Open != 2 || diff != "" {
			t.Errorf("open %d, by severity (-want +got):\n%s", ov.Open, diff)
		}
		var ages []int
		for _, a := range ov.Ages {
			ages = append(ages, a.Total)
		}
		if diff := cmp.Diff([]int{1, 0, 1, 0}, ages); diff != "" {
			t.Errorf("ages (-want +got):\n%s", diff)
		}
		if len(ov.Oldest) != 2 || ov.Oldest[0].Kind != scan.KindVulnerability || !ov.Oldest[0].OpenedAt.Equal(start) ||
			ov.Oldest[0].AgeDays(e.clock.Now()) != 42 {
			t.Errorf("oldest = %+v", ov.Oldest)
		}
		if len(ov.Repos) != 1 || ov.Repos[0].Name != "acme/shop" || ov.Repos[0].Open != 2 {
			t.Errorf("repos = %+v", ov.Repos)
		}
	})
}

func TestBadInput(t *testing.T) {
	each(t, alerts.Limits{MaxTreeBytes: 64 << 10, MaxFileSize: 16 << 10}, func(t *testing.T, e *env) {
		c1 := e.repo.commit("main", "first", map[string]string{"Dockerfile": dockerfile})
		e.push(t, "main", c1)
		before := e.all(t)
		if len(before["misconfiguration"]) == 0 {
			t.Fatal("no alerts to keep")
		}
		status := func() alerts.RepoStatus {
			st, err := e.svc.RepoByName(t.Context(), e.acme, "acme/shop")
			if err != nil {
				t.Fatal(err)
			}
			return st
		}
		pwned := filepath.Join(t.TempDir(), "pwned")
		for _, tt := range []struct {
			name    string
			ev      boards.PushEvent
			errText string // recorded on the repository ("" for events dropped before)
		}{
			{"commit id as an option", boards.PushEvent{Repo: "acme/shop", RepoID: repoID, DefaultBranch: true, After: "--output=" + pwned}, "not a full commit id"},
			{"commit not in the repository", boards.PushEvent{Repo: "acme/shop", RepoID: repoID, DefaultBranch: true, After: strings.Repeat("ab", 20)}, "is not in the repository"},
			{"unknown repository", boards.PushEvent{Repo: "acme/gone", RepoID: 99, DefaultBranch: true, After: c1}, ""},
			{"unknown org", boards.PushEvent{Repo: "nosuch/shop", RepoID: repoID, DefaultBranch: true, After: c1}, ""},
			{"bad repository name", boards.PushEvent{Repo: "../../etc", RepoID: repoID, DefaultBranch: true, After: c1}, ""},
			{"branch deleted", boards.PushEvent{Repo: "acme/shop", RepoID: repoID, DefaultBranch: true, After: strings.Repeat("0", 40)}, ""},
		} {
			t.Run(tt.name, func(t *testing.T) {
				e.publish(t, tt.ev)
				if st := status(); tt.errText != "" && !strings.Contains(st.LastError, tt.errText) {
					t.Errorf("last error = %q, want it to say %q", st.LastError, tt.errText)
				}
				if diff := cmp.Diff(before, e.all(t)); diff != "" {
					t.Errorf("alerts changed (-before +after):\n%s", diff)
				}
			})
		}
		if _, err := os.Stat(pwned); err == nil {
			t.Fatal("git wrote a file named in the event")
		}
		e.publish(t, "not a push")

		// Symbolic links are not followed; files over the size limit and
		// odd names are left out.
		outside := filepath.Join(t.TempDir(), "outside.env")
		if err := os.WriteFile(outside, []byte(awsKey(5)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, filepath.Join(e.repo.work, "link.env")); err != nil {
			t.Fatal(err)
		}
		c2 := e.repo.commit("main", "links and big files", map[string]string{
			"big.env":        strings.Repeat("#\n", 10<<10) + awsKey(6) + "\n",
			"odd\nname.env":  awsKey(7) + "\n",
			"sub/normal.txt": "hello\n",
		})
		e.push(t, "main", c2)
		if got := e.all(t)["secret"]; len(got) != 0 {
			t.Errorf("secrets found through a link, a big file or an odd name: %+v", got)
		}
		if st := status(); st.LastCommit != c2 || st.LastError != "" {
			t.Errorf("status after the second push = %+v", st)
		}

		// A tree over the limit is not scanned: the alerts stay as they
		// were and the repository says why.
		now := e.all(t)
		c3 := e.repo.commit("main", "too big", map[string]string{"big1.txt": strings.Repeat("x", 15<<10),
			"big2.txt": strings.Repeat("y", 15<<10), "big3.txt": strings.Repeat("z", 15<<10), "big4.txt": strings.Repeat("w", 15<<10), "big5.txt": strings.Repeat("v", 15<<10),
			"Dockerfile": ""})
		e.push(t, "main", c3)
		if st := status(); !strings.Contains(st.LastError, "over 65536 bytes") || st.LastCommit != c2 {
			t.Errorf("status after an oversized tree = %+v", st)
		}
		if diff := cmp.Diff(now, e.all(t)); diff != "" {
			t.Errorf("an unscanned tree changed alerts (-before +after):\n%s", diff)
		}
	})
}

func TestBypass(t *testing.T) {
	each(t, alerts.Limits{}, func(t *testing.T, e *env) {
		c1 := e.repo.commit("feature", "key", map[string]string{"deploy.env": awsKey(8) + "\n"})
		ev := alerts.BypassEvent{Repo: "acme/shop", RepoID: repoID, Ref: "refs/heads/feature", Pusher: "dev", Reason: "test key\x1b[2J, rotating",
			Findings: []alerts.BypassFinding{
				{RuleID: "aws-access-key-id", Title: "AWS access key ID", Severity: "high", Path: "deploy.env", Line: 1, Commit: c1, Fingerprint: "fp-1"},
				{RuleID: "x", Severity: "high", Path: "a", Commit: "--output=/tmp/x", Fingerprint: "fp-2"}, // not a commit id: dropped
				{RuleID: "x", Severity: "high", Path: "a", Commit: c1},                                     // no fingerprint: dropped
			}}
		for range 2 { // delivered twice, raised once
			if err := e.bus.PublishNow(t.Context(), alerts.EventBypass, ev); err != nil {
				t.Fatal(err)
			}
		}
		var got []alerts.Alert
		deadline := time.Now().Add(30 * time.Second)
		for {
			got = e.all(t)["secret"]
			var seen int64
			err := e.db.QueryRow(t.Context(), "SELECT seq FROM event_cursors WHERE subscriber = 'alerts-bypass'").Scan(&seen)
			if len(got) > 0 && err == nil && seen >= 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("bypass alerts: %+v", got)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if len(got) != 1 {
			t.Fatalf("%d bypass alerts, want 1: %+v", len(got), got)
		}
		a := got[0]
		if a.Source != alerts.SourceBypass || a.State != alerts.StateOpen || a.FirstCommit != c1 || a.Path != "deploy.env" ||
			a.Finding.Description != "Pushed to refs/heads/feature by dev past push protection, with the reason: test key[2J, rotating" {
			t.Errorf("bypass alert = %+v", a)
		}
		if n, _ := e.published(t, alerts.EventOpened); n != 1 {
			t.Errorf("%d alerts.opened events", n)
		}
		// Default-branch scans leave bypass alerts alone.
		e.push(t, "main", e.repo.commit("main", "clean", map[string]string{"README.md": "hi\n", "deploy.env": ""}))
		if a := e.one(t, "secret"); a.State != alerts.StateOpen {
			t.Errorf("a scan without the secret moved the bypass alert to %s", a.State)
		}
	})
}
