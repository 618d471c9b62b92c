package httpapi

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/logging"
	"github.com/rampartsec/rampart/internal/problem"
)

// FuzzParseLifetime: a lifetime is either the default (empty input) or a
// positive duration, at most 366 days when given in days; anything else is
// an invalid expires_in.
func FuzzParseLifetime(f *testing.F) {
	for _, s := range []string{"", "30d", "366d", "367d", "0d", "-1d", "+5d", "720h", "1ns", "-1h", " 7d ", "d", "1.5d",
		"9223372036854775807ns", "99999999999999999999d", "1h30m", "١d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseLifetime(s)
		if err != nil {
			if apperr.KindOf(err) != apperr.Invalid || apperr.FieldOf(err) != "expires_in" {
				t.Fatalf("ParseLifetime(%q) = %v: kind %v field %q", s, err, apperr.KindOf(err), apperr.FieldOf(err))
			}
			return
		}
		trimmed := strings.TrimSpace(s)
		switch {
		case trimmed == "" && d != 0:
			t.Fatalf("ParseLifetime(%q) = %v, want the default (0)", s, d)
		case trimmed != "" && d <= 0:
			t.Fatalf("ParseLifetime(%q) = %v, want a positive duration", s, d)
		case strings.HasSuffix(trimmed, "d") && (d > 366*24*time.Hour || d%(24*time.Hour) != 0):
			t.Fatalf("ParseLifetime(%q) = %v, want whole days up to 366", s, d)
		}
	})
}

// FuzzDecode sends arbitrary bodies and media types through a handler that
// decodes strictly, as every API handler does. Decoding never panics; it
// fails with an invalid or too-large problem whose text is safe to show, or
// it succeeds on exactly one JSON object of the request type that fits the
// size limit.
func FuzzDecode(f *testing.F) {
	for _, s := range []struct{ ct, body string }{
		{"application/json", `{"name":"ci","scopes":["repo:read"],"expires_in":"30d"}`},
		{"", `{"name":"ci"}`},
		{"application/json; charset=utf-8", `{"name":"ci"} `},
		{"application/merge-patch+json", `{}`},
		{"text/plain", `{"name":"ci"}`},
		{"application/json", ``},
		{"application/json", `{"name":`},
		{"application/json", `{"name":"ci"}{"name":"again"}`},
		{"application/json", `{"name":"ci"} x`},
		{"application/json", `{"nope":1}`},
		{"application/json", `{"scopes":"admin"}`},
		{"application/json", `[1,2]`},
		{"application/json", `null`},
		{"application/json", `{"` + strings.Repeat("é", 40) + `":1}`},
		{"application/json", `{"a` + strings.Repeat("é", 40) + `":1}`},
		{"application/json", `{"\u0000\u001b[2J":1}`},
		{"application/json", `{"name":"` + strings.Repeat("x", 2000) + `"}`},
		{"multipart/form-data; boundary", `{}`},
	} {
		f.Add(s.ct, []byte(s.body))
	}
	const maxBody = 1024
	srv := &Server{maxBody: maxBody, log: logging.Discard()}
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		var (
			got    CreateTokenRequest
			decErr error
		)
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c := &Call{W: w, R: r, s: srv}
			if decErr = c.Decode(&got); decErr != nil {
				problem.Write(w, r, srv.log, decErr)
				return
			}
			_ = writeJSON(w, http.StatusOK, got)
		})
		req := httptest.NewRequest("POST", "/api/v1/user/tokens", bytes.NewReader(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		if decErr != nil {
			k := apperr.KindOf(decErr)
			if k != apperr.Invalid && k != apperr.TooLarge {
				t.Fatalf("Decode(%q, %q) = %v: kind %v, want invalid or too large", ct, body, decErr, k)
			}
			if k == apperr.TooLarge && len(body) <= maxBody {
				t.Fatalf("Decode of %d bytes: too large (limit %d)", len(body), maxBody)
			}
			var p problem.Details
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != rec.Code || p.Status != problem.Status(k) {
				t.Fatalf("problem response %d %q: %v", rec.Code, rec.Body, err)
			}
			for _, s := range []string{apperr.Message(decErr), apperr.FieldOf(decErr)} {
				if !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) }) >= 0 {
					t.Fatalf("unsafe text %q in the problem for %q", s, body)
				}
			}
			return
		}

		if rec.Code != http.StatusOK {
			t.Fatalf("success with status %d", rec.Code)
		}
		if ct != "" {
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
				t.Fatalf("accepted media type %q", ct)
			}
		}
		if len(body) > maxBody {
			t.Fatalf("accepted %d bytes, over the %d limit", len(body), maxBody)
		}
		// Exactly one JSON object that decodes strictly to the same value.
		trimmed := bytes.TrimSpace(body)
		if !json.Valid(trimmed) || len(trimmed) == 0 || trimmed[0] != '{' {
			t.Fatalf("accepted %q: not one JSON object", body)
		}
		var want CreateTokenRequest
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("accepted %q, which strict decoding refuses: %v", body, err)
		}
		if !cmp.Equal(want, got) {
			t.Fatalf("Decode(%q) = %+v, want %+v", body, got, want)
		}
	})
}

// A body over the limit is refused with a message naming the limit.
func TestDecode_TooLarge(t *testing.T) {
	srv := &Server{maxBody: 64, log: logging.Discard()}
	body := `{"name":"` + strings.Repeat("x", 100) + `"}`
	req := httptest.NewRequest("POST", "/", strings.NewReader(body))
	c := &Call{W: httptest.NewRecorder(), R: req, s: srv}
	var v CreateTokenRequest
	err := c.Decode(&v)
	if apperr.KindOf(err) != apperr.TooLarge || !strings.Contains(err.Error(), "exceeds 64 bytes") {
		t.Fatalf("Decode = %v", err)
	}
}
