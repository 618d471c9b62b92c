package pipeline

import (
	"bytes"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
)

func maskAll(t *testing.T, secrets []string, chunks ...string) string {
	t.Helper()
	var out bytes.Buffer
	m := NewMasker(&out, secrets)
	for _, c := range chunks {
		if _, err := m.Write([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestMasker(t *testing.T) {
	const secret = "s3cr3t-Value/with+chars&more"
	b64 := base64.StdEncoding.EncodeToString([]byte(secret))
	tests := []struct {
		name   string
		chunks []string
		want   string
	}{
		{"plain", []string{"token=" + secret + "\n"}, "token=***\n"},
		{"split across writes", []string{"token=" + secret[:5], secret[5:12], secret[12:] + " end"}, "token=*** end"},
		{"byte by byte", strings.Split("a "+secret+" b", ""), "a *** b"},
		{"base64", []string{"Authorization: Basic " + b64}, "Authorization: Basic ***"},
		{"base64 url", []string{base64.URLEncoding.EncodeToString([]byte(secret))}, "***"},
		{"url escaped", []string{"?p=" + url.QueryEscape(secret)}, "?p=***"},
		{"path escaped", []string{"/x/" + url.PathEscape(secret)}, "/x/***"},
		{"twice", []string{secret + secret}, "******"},
		{"no secret", []string{"hello \x1b[31mred\x1b[0m\n"}, "hello \x1b[31mred\x1b[0m\n"},
		{"prefix only", []string{secret[:10]}, secret[:10]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := maskAll(t, []string{secret}, tt.chunks...); got != tt.want {
				t.Errorf("got %q; want %q", got, tt.want)
			}
		})
	}
}

// A secret embedded at any offset of a longer base64 stream (a credential
// inside an encoded config file) is masked too.
func TestMasker_Base64Embedded(t *testing.T) {
	const secret = "hunter2-password"
	for prefix := 0; prefix < 6; prefix++ {
		doc := strings.Repeat("x", prefix) + "password: " + secret + "\nmore"
		enc := base64.StdEncoding.EncodeToString([]byte(doc))
		got := maskAll(t, []string{secret}, enc)
		if !strings.Contains(got, maskText) {
			t.Errorf("prefix %d: %q not masked in %q", prefix, secret, got)
		}
	}
}

func FuzzMasker(f *testing.F) {
	f.Add("abcdsecretxyz", "secret", 3)
	f.Add("c2VjcmV0", "secret", 1)
	f.Fuzz(func(t *testing.T, text, secret string, split int) {
		if len(secret) < minSecretLen || len(secret) > 64 {
			return
		}
		var out bytes.Buffer
		m := NewMasker(&out, []string{secret})
		if split <= 0 {
			split = 1
		}
		for i := 0; i < len(text); i += split {
			m.Write([]byte(text[i:min(i+split, len(text))]))
		}
		m.Close()
		// Bytes that were not adjacent in the input are separated by ***
		// in the output, so a secret without '*' can only survive as an
		// input substring the masker failed to see.
		if !strings.Contains(secret, "*") && strings.Contains(out.String(), secret) {
			t.Fatalf("secret %q left in %q (input %q)", secret, out.String(), text)
		}
	})
}
