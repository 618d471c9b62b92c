package app_test

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/testenv"
)

const module = "github.com/rampartsec/rampart"

type pkg struct {
	ImportPath string
	Dir        string
	Imports    []string
	GoFiles    []string
	Standard   bool
}

// listPackages lists the module's packages with their direct imports.
func listPackages(t *testing.T) []pkg {
	t.Helper()
	gobin := testenv.LookPath(t, "go")
	cmd := exec.Command(gobin, "list", "-json", module+"/...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// TestImportRules enforces the package boundaries of STYLE.md: only the
// store speaks database/sql and drivers, apperr and authz stay pure, and no
// package reaches for cloud or Kubernetes SDKs outside its backend.
func TestImportRules(t *testing.T) {
	pkgs := listPackages(t)
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	storeOnly := []string{"database/sql", "modernc.org/sqlite", "github.com/jackc/pgx"}
	banned := []string{"k8s.io/", "github.com/aws/aws-sdk-go"}
	for _, p := range pkgs {
		rel := strings.TrimPrefix(p.ImportPath, module+"/")
		for _, imp := range p.Imports {
			for _, s := range storeOnly {
				if strings.HasPrefix(imp, s) && !strings.HasPrefix(rel, "internal/store") {
					t.Errorf("%s imports %s: only internal/store may use database/sql and its drivers", rel, imp)
				}
			}
			for _, b := range banned {
				// kubetarget is the Kubernetes backend of deploy.
				if b == "k8s.io/" && rel == "internal/deploy/kubetarget" {
					continue
				}
				if strings.HasPrefix(imp, b) {
					t.Errorf("%s imports %s: SDKs belong in a backend package named for them", rel, imp)
				}
			}
		}
		switch rel {
		case "internal/apperr":
			for _, imp := range p.Imports {
				if strings.Contains(imp, ".") {
					t.Errorf("internal/apperr imports %s: it may import only the standard library", imp)
				}
			}
		case "internal/authz":
			for _, imp := range p.Imports {
				if strings.Contains(imp, ".") && imp != module+"/internal/apperr" {
					t.Errorf("internal/authz imports %s: decisions must not depend on storage or transport", imp)
				}
			}
		}
		// Benchmark drivers under bench/ run the whole server in process,
		// as tests do.
		if !strings.HasPrefix(rel, "internal/app") && rel != "cmd/rampart" && rel != "internal/cli" && !strings.HasPrefix(rel, "bench/") {
			if slices.Contains(p.Imports, module+"/internal/app") {
				t.Errorf("%s imports internal/app: only the CLI, tests and bench/ drivers may use the composition root", rel)
			}
		}
	}
}

// TestPackagesHaveDocs makes every package explain itself in a doc comment.
func TestPackagesHaveDocs(t *testing.T) {
	for _, p := range listPackages(t) {
		fset := token.NewFileSet()
		documented := false
		for _, f := range p.GoFiles {
			af, err := parser.ParseFile(fset, filepath.Join(p.Dir, f), nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			if af.Doc != nil && strings.TrimSpace(af.Doc.Text()) != "" {
				documented = true
				break
			}
		}
		if !documented {
			t.Errorf("package %s has no doc comment", p.ImportPath)
		}
	}
}
