package secrets_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/scan/secrets"
	"github.com/rampartsec/rampart/internal/scan/secrets/secretstest"
	"github.com/rampartsec/rampart/internal/scan/source"
)

// benchFiles loads Go source from the standard library (net/http and
// crypto, about 10 MB) once.
func benchFiles(b *testing.B) []source.File {
	b.Helper()
	var files []source.File
	for _, dir := range []string{"net/http", "crypto"} {
		root := filepath.Join(goroot(b), "src", dir)
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil || source.IsBinary(data) {
				return err
			}
			files = append(files, source.File{Path: p, Data: data})
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return files
}

// BenchmarkEngine_Scan measures one goroutine scanning ordinary source
// code with the default rules (run with -cpuprofile to see where time
// goes).
func BenchmarkEngine_Scan(b *testing.B) {
	files := benchFiles(b)
	e := defaultEngine(b)
	var n int64
	for _, f := range files {
		n += int64(len(f.Data))
	}
	b.SetBytes(n)
	b.ResetTimer()
	for b.Loop() {
		for _, f := range files {
			e.Scan(f.Path, f.Data)
		}
	}
}

// BenchmarkEngine_ScanPlanted measures content dense with secrets.
func BenchmarkEngine_ScanPlanted(b *testing.B) {
	c := secretstest.Generate(1, 1)
	e := defaultEngine(b)
	var n int64
	for _, f := range c.Files {
		n += int64(len(f.Data))
	}
	b.SetBytes(n)
	for b.Loop() {
		for _, f := range c.Files {
			e.Scan(f.Path, f.Data)
		}
	}
}

// BenchmarkEngine_Keywordless measures content in which no keyword occurs:
// the speed of the keyword automaton alone.
func BenchmarkEngine_Keywordless(b *testing.B) {
	data := []byte(strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit 0123456789.\n", 1<<14))
	e := defaultEngine(b)
	if f := e.Scan("x.txt", data); len(f) != 0 {
		b.Fatalf("findings in filler: %v", f)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		e.Scan("x.txt", data)
	}
}

// BenchmarkNew measures compiling the default rules into an engine.
func BenchmarkNew(b *testing.B) {
	rules := secrets.DefaultRules()
	for b.Loop() {
		if _, err := secrets.New(rules); err != nil {
			b.Fatal(err)
		}
	}
}
