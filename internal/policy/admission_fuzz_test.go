package policy_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/policy"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// FuzzAdmit sends arbitrary bodies to the admission webhook's service:
// each is refused with a classified error, or answered with a review for
// the request's uid whose verdict matches the recorded decision.
func FuzzAdmit(f *testing.F) {
	fx := newFixture(f, storetest.OpenSQLite(f))
	seed, err := os.ReadFile(filepath.Join("testdata", "inputs", "admission-privileged.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(seed))
	f.Add(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod"},"operation":"DELETE"}}`)
	f.Add(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Deployment","group":"apps","version":"v1"},"operation":"CREATE","object":{"kind":"Deployment","metadata":{"generateName":"web-"},"spec":{"template":{"spec":{"containers":[{"name":"a","image":"busybox"}]}}}}}}`)
	f.Add(`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u"}}`)
	f.Add(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","object":[1,2]}}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, body string) {
		review, err := fx.svc.Admit(t.Context(), fx.org, "prod", []byte(body))
		if err != nil {
			if k := apperr.KindOf(err); k != apperr.Invalid && k != apperr.TooLarge {
				t.Fatalf("error of kind %v: %v", k, err)
			}
			return
		}
		var in policy.AdmissionReview
		if err := json.Unmarshal([]byte(body), &in); err != nil || in.Request == nil {
			t.Fatalf("answered a body that is not a review: %q", body)
		}
		r := review.Response
		if r == nil || r.UID != in.Request.UID || review.APIVersion != "admission.k8s.io/v1" || review.Kind != "AdmissionReview" {
			t.Fatalf("bad answer %+v to uid %q", review, in.Request.UID)
		}
		if !r.Allowed && (r.Status == nil || r.Status.Message == "") {
			t.Fatalf("denied without a message: %+v", r)
		}
	})
}
