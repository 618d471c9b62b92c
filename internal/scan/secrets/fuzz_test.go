package secrets_test

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rampartsec/rampart/internal/scan/secrets"
)

func FuzzParseGitleaksTOML(f *testing.F) {
	f.Add(customTOML)
	f.Add("[[rules]]\nid = \"a\"\nregex = '''a(b+)'''\nkeywords = [\"a\"]\n[[rules.allowlists]]\nstopwords = [\"bb\"]\n")
	f.Add("[extend]\nuseDefault = true\n[[allowlists]]\npaths = ['x']\n")
	f.Add("[[rules]]\nid = \"a\"\nregex = '(?i)'\nsecretGroup = -1\n")
	f.Fuzz(func(t *testing.T, config string) {
		rules, err := secrets.ParseGitleaksTOML(strings.NewReader(config))
		if err != nil {
			return
		}
		// Whatever loads must make an engine that scans without panicking.
		e, err := secrets.New(rules)
		if err != nil {
			return
		}
		e.Scan("x/config.txt", []byte(config))
	})
}

func FuzzEngineScan(f *testing.F) {
	f.Add("GITHUB_TOKEN=ghp_0aB1cD2eF3gH4iJ5kL6mN7oP8qR9sT0uV1wX\n")
	f.Add("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw\n-----END RSA PRIVATE KEY-----")
	f.Add("postgres://u:p%ZZ@h/db aws_secret_access_key=\xff\xfe" + strings.Repeat("A", 40))
	f.Add("api_key = \"é" + strings.Repeat("Zx9", 10) + "\"\r\n")
	e, err := secrets.New(secrets.DefaultRules())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data string) {
		lines := bytes.Count([]byte(data), []byte{'\n'}) + 1
		for _, fi := range e.Scan("f.txt", []byte(data)) {
			l := fi.Location
			if l.StartLine < 1 || l.EndLine < l.StartLine || l.EndLine > lines || l.StartCol < 1 || l.EndCol < 1 {
				t.Fatalf("bad location %+v for %d lines", l, lines)
			}
			shown, ok := strings.CutSuffix(fi.Secret.Redacted, "…")
			if !ok || utf8.RuneCountInString(shown) > 4 {
				t.Fatalf("redacted %q", fi.Secret.Redacted)
			}
		}
	})
}
