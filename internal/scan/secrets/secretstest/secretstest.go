// Package secretstest generates labelled corpora of planted secrets:
// synthetic values in the real formats of every rule in
// secrets.DefaultRules, written into files among ordinary lines. Tests
// use it to measure recall; bench/secrets.sh uses it (through
// bench/secretscan) to compare Rampart with gitleaks on the same corpus.
package secretstest

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/rampartsec/rampart/internal/scan/secrets"
)

// Planted is the label of one planted secret.
type Planted struct {
	RuleID string `json:"rule_id"`
	// Path is slash-separated, relative to the corpus root.
	Path string `json:"path"`
	// Line and EndLine (1-based) hold the secret.
	Line    int    `json:"line"`
	EndLine int    `json:"end_line"`
	Secret  string `json:"secret"`
}

// File is one file of a corpus.
type File struct {
	Path string
	Data []byte
}

// Corpus is a set of files with the secrets planted in them.
type Corpus struct {
	Files   []File
	Planted []Planted
}

// RuleIDs returns the ids of the rules that have templates.
func RuleIDs() []string {
	ids := make([]string, 0, len(templates))
	for id := range templates {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// filler are ordinary lines of code and configuration around secrets;
// none of them holds a secret.
var filler = []string{
	`package config`,
	`// Settings for the service; values come from the environment.`,
	`func load() error {`,
	`	log.Printf("loading %s", name)`,
	`}`,
	`timeout: 30s`,
	`retries = 3`,
	`# deployment settings`,
	`LOG_LEVEL=info`,
	`const version = "1.4.2"`,
	`	if err != nil { return err }`,
	`host: db.internal`,
}

// extensions vary the kinds of file secrets are planted in.
var extensions = []string{".env", ".yaml", ".py", ".js", ".go", ".json", ".properties", ".sh", ".tf", ".txt"}

// Generate returns a corpus with copies planted secrets per template of
// every rule (each copy with fresh random values), one file per rule
// and copy.
func Generate(seed uint64, copies int) Corpus {
	rnd := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var c Corpus
	for i, id := range RuleIDs() {
		for n := range copies {
			var b strings.Builder
			line := 1
			write := func(s string) {
				b.WriteString(s)
				b.WriteByte('\n')
				line += strings.Count(s, "\n") + 1
			}
			path := fmt.Sprintf("planted/%s/%d/config%s", id, n, extensions[(i+n)%len(extensions)])
			for k, t := range templates[id] {
				write(filler[(i+k)%len(filler)])
				write(filler[(i+k+5)%len(filler)])
				text, secret, offset := Expand(t, rnd)
				start := line + strings.Count(text[:offset], "\n")
				c.Planted = append(c.Planted, Planted{RuleID: id, Path: path, Line: start,
					EndLine: start + strings.Count(secret, "\n"), Secret: secret})
				write(text)
			}
			write(filler[(i+7)%len(filler)])
			c.Files = append(c.Files, File{Path: path, Data: []byte(b.String())})
		}
	}
	return c
}

// Write writes the corpus's files under dir.
func (c Corpus) Write(dir string) error {
	for _, f := range c.Files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Character sets of the placeholders.
var classes = map[string]string{
	"A": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
	"a": "abcdefghijklmnopqrstuvwxyz",
	"0": "0123456789",
	"h": "0123456789abcdef",
	"H": "0123456789ABCDEF",
	"n": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
	"l": "abcdefghijklmnopqrstuvwxyz0123456789",
	"u": "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
	"L": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
	"b": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
	"w": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-",
	"7": "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
	"z": "abcdefghijklmnopqrstuvwxyz234567",
	"g": "abcdefgh0123456789",
	"e": "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L",
}

// Expand fills a template's placeholders and returns the text without
// the « » markers, the secret between them and its byte offset.
func Expand(t string, rnd *rand.Rand) (text, secret string, offset int) {
	var b strings.Builder
	start, end := -1, -1
	for i := 0; i < len(t); {
		switch {
		case strings.HasPrefix(t[i:], "«"):
			start = b.Len()
			i += len("«")
			continue
		case strings.HasPrefix(t[i:], "»"):
			end = b.Len()
			i += len("»")
			continue
		case t[i] == '{':
			j := strings.IndexByte(t[i:], '}')
			if j > 0 {
				if s, ok := placeholder(t[i+1:i+j], rnd); ok {
					b.WriteString(s)
					i += j + 1
					continue
				}
			}
		}
		b.WriteByte(t[i])
		i++
	}
	text = b.String()
	if start < 0 || end < start {
		panic("secretstest: template without « »: " + t)
	}
	return text, text[start:end], start
}

func placeholder(p string, rnd *rand.Rand) (string, bool) {
	switch p {
	case "uuid":
		h := random(classes["h"], 32, rnd)
		return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], true
	case "rpt":
		body := "rpt_" + random(classes["n"], 40, rnd)
		return body + secrets.RampartChecksum(body), true
	case "basic":
		return base64.StdEncoding.EncodeToString([]byte("svc-" + random(classes["l"], 6, rnd) + ":" + random(classes["n"], 20, rnd))), true
	case "pem":
		lines := make([]string, 10)
		for i := range lines {
			lines[i] = random(classes["b"], 64, rnd)
		}
		return strings.Join(lines, "\n"), true
	}
	class, count, ok := strings.Cut(p, ":")
	set, known := classes[class]
	n, err := strconv.Atoi(count)
	if !ok || !known || err != nil {
		return "", false
	}
	return random(set, n, rnd), true
}

func random(set string, n int, rnd *rand.Rand) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = set[rnd.IntN(len(set))]
	}
	return string(b)
}
