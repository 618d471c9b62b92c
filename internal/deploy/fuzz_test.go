package deploy_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/deploy"
)

// FuzzEnvironmentSpec: any JSON an owner sends for an environment is
// either refused as invalid or stored normalised; nothing panics, and a
// stored spec is stable (normalising it again changes nothing).
func FuzzEnvironmentSpec(f *testing.F) {
	for _, s := range []string{
		`{}`,
		`{"protection":{"required_approvals":2,"approvers":["a","b"],"windows":[{"days":["mon"],"start":"09:00","end":"17:00"}],"approval_timeout":"1h"}}`,
		`{"target":{"kind":"node","replicas":3,"strategy":{"kind":"canary","steps":[5,25,100],"pause":"1m"},"host":"a.example.com"}}`,
		`{"protection":{"windows":[{"start":"24:00","end":"24:01"}]}}`,
		`{"target":{"strategy":{"kind":"canary","steps":[100,100]}}}`,
		`{"protection":{"allowed_branches":["release/[a-"]}}`,
		`{"target":{"health_timeout":"-1s","port":70000}}`,
	} {
		f.Add([]byte(s))
	}
	db := openFuzzStore(f)
	s := newFuzzService(f, db)
	f.Fuzz(func(t *testing.T, data []byte) {
		var spec deploy.EnvironmentSpec
		if json.Unmarshal(data, &spec) != nil {
			return
		}
		e, _, err := s.PutEnvironment(as("owner", 1), testScope, "fuzz", spec)
		if err != nil {
			return
		}
		again, _, err := s.PutEnvironment(as("owner", 1), testScope, "fuzz", deploy.EnvironmentSpec{Position: e.Position, Protection: e.Protection, Target: e.Target})
		if err != nil {
			t.Fatalf("a stored spec does not pass again: %v", err)
		}
		if b1, _ := json.Marshal(e.Target); string(b1) != string(mustJSON(again.Target)) {
			t.Fatalf("normalising twice changed the target: %s vs %s", b1, mustJSON(again.Target))
		}
	})
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

// FuzzWindow: a window that validates answers Open for any time without
// panicking.
func FuzzWindow(f *testing.F) {
	f.Add("mon", "09:00", "17:00", int64(0))
	f.Add("", "00:00", "24:00", int64(1e9))
	f.Add("sun", "23:59", "24:00", int64(-1e12))
	f.Fuzz(func(t *testing.T, day, start, end string, at int64) {
		w := deploy.Window{Start: start, End: end}
		if day != "" {
			w.Days = []string{day}
		}
		_ = w.Open(time.Unix(at, 0))
	})
}

// FuzzRelease: any release body is refused as invalid or recorded; a
// recorded release reads back the same.
func FuzzRelease(f *testing.F) {
	f.Add([]byte(`{"image":"registry.example.com/acme/web","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111"}`))
	f.Add([]byte(`{"image":"127.0.0.1:5000/a/b","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","config":{"env":{"A":"b"},"command":["/app","-x"]},"secret_refs":[{"env":"DB","ref":"db/pw#v"}],"work_items":["W-1"]}`))
	f.Add([]byte(`{"image":"a/b","digest":"sha256:zz","secret_refs":[{"env":"PORT","ref":"x"}]}`))
	db := openFuzzStore(f)
	s := newFuzzService(f, db)
	f.Fuzz(func(t *testing.T, data []byte) {
		var r deploy.Release
		if json.Unmarshal(data, &r) != nil {
			return
		}
		r.ID, r.Number, r.CreatedBy, r.CreatedAt = 0, 0, "", time.Time{}
		got, err := s.CreateRelease(as("dev", 2), testScope, r)
		if err != nil {
			return
		}
		back, err := s.Release(as("dev", 2), testScope, got.Number)
		if err != nil || string(mustJSON(back)) != string(mustJSON(got)) {
			t.Fatalf("release reads back differently: %s vs %s (%v)", mustJSON(back), mustJSON(got), err)
		}
	})
}
