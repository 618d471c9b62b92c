package httpapi_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/problem"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// problemOf decodes a problem document.
func problemOf(t *testing.T, r apptest.Response) problem.Details {
	t.Helper()
	var p problem.Details
	if ct := r.Header.Get("Content-Type"); ct != problem.ContentType {
		t.Errorf("Content-Type = %q, want %q: %s", ct, problem.ContentType, brief(r.Body))
		return p
	}
	r.Decode(t, &p)
	return p
}

// wantProblem checks a refusal: its status, that its detail says detail,
// and the field it names.
func wantProblem(t *testing.T, r apptest.Response, status int, detail, field string) problem.Details {
	t.Helper()
	if r.Status != status {
		t.Errorf("status = %d, want %d: %s", r.Status, status, brief(r.Body))
	}
	p := problemOf(t, r)
	if !strings.Contains(p.Detail, detail) {
		t.Errorf("detail = %q, want it to say %q", p.Detail, detail)
	}
	if p.Field != field {
		t.Errorf("field = %q, want %q (detail %q)", p.Field, field, p.Detail)
	}
	if p.RequestID == "" {
		t.Errorf("problem without request_id: %s", brief(r.Body))
	}
	return p
}

// send sends a request built by the caller (headers the apptest client
// does not set) and reads the whole response.
func send(t *testing.T, req *http.Request) apptest.Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL.Path, err)
	}
	return apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// newRequest builds a request to the app with a bearer token and a
// Content-Type (each optional).
func newRequest(t *testing.T, a *apptest.App, method, path, token, contentType string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, a.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req
}

// eachStore runs fn once per store backend (SQLite, and PostgreSQL when
// RAMPART_TEST_POSTGRES is set), passing the option that selects it.
func eachStore(t *testing.T, fn func(t *testing.T, store apptest.Option)) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { fn(t, apptest.WithStore(b.URL(t))) })
	}
}
