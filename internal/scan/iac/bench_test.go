package iac_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/scan/iac"
)

type benchFile struct {
	path string
	data []byte
}

// benchFiles is every fixture three times over under different paths:
// about 350 small Terraform, Kubernetes and Dockerfile files.
func benchFiles(b *testing.B) ([]benchFile, int64) {
	b.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "checks", "*", "*"))
	if err != nil || len(paths) == 0 {
		b.Fatal(paths, err)
	}
	var files []benchFile
	var size int64
	for i := range 3 {
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				b.Fatal(err)
			}
			files = append(files, benchFile{fmt.Sprintf("copy%d/%s", i, filepath.ToSlash(p)), data})
			size += int64(len(data))
		}
	}
	return files, size
}

// BenchmarkScan scans a few hundred files, one after another: all of
// them, then those of each kind.
func BenchmarkScan(b *testing.B) {
	s := scanner(b)
	all, _ := benchFiles(b)
	for _, kind := range []string{"all", ".tf", ".yaml", ".Dockerfile"} {
		var files []benchFile
		var size int64
		for _, f := range all {
			if kind == "all" || strings.HasSuffix(f.path, kind) {
				files, size = append(files, f), size+int64(len(f.data))
			}
		}
		b.Run(strings.TrimPrefix(kind, "."), func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				for _, f := range files {
					if _, notes := s.Scan(b.Context(), f.path, f.data); notes != nil {
						b.Fatal(notes)
					}
				}
			}
			b.ReportMetric(float64(len(files))*float64(b.N)/b.Elapsed().Seconds(), "files/s")
		})
	}
}

// BenchmarkScanParallel scans the same files from GOMAXPROCS goroutines.
func BenchmarkScanParallel(b *testing.B) {
	s := scanner(b)
	files, size := benchFiles(b)
	b.SetBytes(size)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			for _, f := range files {
				s.Scan(b.Context(), f.path, f.data)
			}
		}
	})
	b.ReportMetric(float64(len(files))*float64(b.N)/b.Elapsed().Seconds(), "files/s")
}

// BenchmarkNew compiles the built-in checks and prepares their queries.
func BenchmarkNew(b *testing.B) {
	for b.Loop() {
		if _, err := iac.New(b.Context(), iac.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
