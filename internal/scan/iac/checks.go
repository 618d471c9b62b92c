package iac

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/scan/report"
)

//go:embed checks
var builtinFS embed.FS

// module is one parsed .rego file.
type module struct {
	file    string
	builtIn bool
	mod     *ast.Module
}

// builtins are the embedded modules, parsed once per process: they never
// change, and Checks and every New share them (the compiler copies what
// it is given).
type builtins struct {
	modules []module
	checks  []CheckInfo
}

var builtinModules = sync.OnceValues(func() (*builtins, error) {
	var mods []module
	err := fs.WalkDir(builtinFS, "checks", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".rego") {
			return err
		}
		src, err := builtinFS.ReadFile(p)
		if err != nil {
			return err
		}
		m, err := parseModule(p, src)
		if err != nil {
			return err
		}
		m.builtIn = true
		mods = append(mods, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("built-in checks: %w", err)
	}
	set := &moduleSet{}
	for _, m := range mods {
		set.add(m)
	}
	checks, err := set.checks()
	if err != nil {
		return nil, fmt.Errorf("built-in checks: %w", err)
	}
	return &builtins{modules: mods, checks: checks}, nil
})

// loadDir parses the .rego files under dir, leaving out OPA test files.
func loadDir(dir string) ([]module, error) {
	var mods []module
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".rego") || strings.HasSuffix(p, "_test.rego") {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		m, err := parseModule(p, src)
		if err != nil {
			return err
		}
		mods = append(mods, m)
		return nil
	})
	if err != nil {
		var ae *apperr.Error
		if errors.As(err, &ae) {
			return nil, err
		}
		return nil, apperr.Wrap(err, apperr.Invalid, "load checks from "+dir+": "+err.Error())
	}
	return mods, nil
}

func parseModule(file string, src []byte) (module, error) {
	m, err := ast.ParseModuleWithOpts(file, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		return module{}, regoError(err)
	}
	return module{file: file, mod: m}, nil
}

// regoError words OPA's errors as file:line: message, one a line.
func regoError(err error) error {
	var errs ast.Errors
	if !errors.As(err, &errs) {
		return apperr.Wrap(err, apperr.Invalid, "rego check: "+err.Error())
	}
	lines := make([]string, 0, len(errs))
	for _, e := range errs {
		loc := ""
		if e.Location != nil {
			loc = fmt.Sprintf("%s:%d: ", e.Location.File, e.Location.Row)
		}
		lines = append(lines, loc+e.Message+" ("+e.Code+")")
	}
	return apperr.Wrap(err, apperr.Invalid, "rego check: "+strings.Join(lines, "\n"))
}

// moduleSet collects modules and finds the checks among them.
type moduleSet struct {
	modules []module
	pkgName map[string]string // check id → last element of its package
}

func (s *moduleSet) add(m module) { s.modules = append(s.modules, m) }

// checks finds the modules whose package is rampart.checks.<kind>.<name>
// and reads their metadata, enforcing the contract of doc.go.
func (s *moduleSet) checks() ([]CheckInfo, error) {
	s.pkgName = map[string]string{}
	byPkg := map[string]string{}
	var checks []CheckInfo
	for _, m := range s.modules {
		path := m.mod.Package.Path
		if len(path) < 3 || path[1].String() != `"rampart"` || path[2].String() != `"checks"` {
			continue
		}
		fail := func(format string, args ...any) error {
			return apperr.E(apperr.Invalid, "rego check %s:%d: %s", m.file, m.mod.Package.Location.Row, fmt.Sprintf(format, args...))
		}
		pkg := strings.TrimPrefix(path.String(), "data.")
		if len(path) != 5 {
			return nil, fail("package %s: a check's package is rampart.checks.<kind>.<name>", pkg)
		}
		kind := InputKind(strings.Trim(path[3].String(), `"`))
		if !slices.Contains(inputKinds, kind) {
			return nil, fail("package %s: unknown kind %q (want dockerfile, kubernetes or terraform)", pkg, kind)
		}
		name, ok := path[4].Value.(ast.String)
		if !ok || !ast.IsVarCompatibleString(string(name)) {
			return nil, fail("package %s: the check's name must be an identifier", pkg)
		}
		if other, dup := byPkg[pkg]; dup {
			return nil, fail("package %s is also declared by %s: each check has a package of its own", pkg, other)
		}
		byPkg[pkg] = m.file
		info, err := checkInfo(m, kind)
		if err != nil {
			return nil, fail("%v", err)
		}
		if _, dup := s.pkgName[info.ID]; dup {
			return nil, fail("check id %s is used by another check", info.ID)
		}
		s.pkgName[info.ID] = string(name)
		checks = append(checks, info)
	}
	slices.SortFunc(checks, func(a, b CheckInfo) int { return strings.Compare(a.ID, b.ID) })
	return checks, nil
}

// checkInfo reads a check module's metadata and makes sure it has a deny
// set.
func checkInfo(m module, kind InputKind) (CheckInfo, error) {
	var meta *ast.Rule
	hasDeny := false
	for _, r := range m.mod.Rules {
		switch r.Head.Ref().String() {
		case "metadata":
			meta = r
		case "deny":
			if r.Head.RuleKind() != ast.MultiValue {
				return CheckInfo{}, errors.New("deny must be a set: write `deny contains {\"message\": …, \"line\": …} if { … }`")
			}
			hasDeny = true
		}
	}
	if meta == nil {
		return CheckInfo{}, errors.New("no metadata: declare `metadata := {\"id\": …, \"severity\": …, \"title\": …, \"remediation\": …}`")
	}
	if !hasDeny {
		return CheckInfo{}, errors.New("no deny rule: declare `deny contains {\"message\": …, \"line\": …} if { … }`")
	}
	if meta.Head.Value == nil || !meta.Body.Equal(ast.NewBody(ast.NewExpr(ast.BooleanTerm(true)))) {
		return CheckInfo{}, errors.New("metadata must be a literal object")
	}
	v, err := ast.JSON(meta.Head.Value.Value)
	obj, ok := v.(map[string]any)
	if err != nil || !ok {
		return CheckInfo{}, errors.New("metadata must be a literal object")
	}
	str := func(k string) (string, error) {
		s, _ := obj[k].(string)
		if strings.TrimSpace(s) == "" {
			return "", fmt.Errorf("metadata has no %s string", k)
		}
		return s, nil
	}
	info := CheckInfo{Kind: kind, File: m.file, BuiltIn: m.builtIn}
	for k, dst := range map[string]*string{"id": &info.ID, "title": &info.Title, "remediation": &info.Remediation} {
		if *dst, err = str(k); err != nil {
			return CheckInfo{}, err
		}
	}
	sev, err := str("severity")
	if err != nil {
		return CheckInfo{}, err
	}
	if info.Severity, err = report.ParseSeverity(sev); err != nil || info.Severity == report.SeverityUnknown {
		return CheckInfo{}, fmt.Errorf("metadata severity %q: want info, low, medium, high or critical", sev)
	}
	return info, nil
}

// forbiddenBuiltins reach outside the scan: the network, or the
// environment of the process (where credentials live).
var forbiddenBuiltins = []string{"http.send", "net.lookup_ip_addr", "opa.runtime"}

// compile compiles every module together with the capabilities of this
// OPA less forbiddenBuiltins.
func compile(s *moduleSet) (*ast.Compiler, error) {
	caps := ast.CapabilitiesForThisVersion()
	caps.Builtins = slices.DeleteFunc(slices.Clone(caps.Builtins), func(b *ast.Builtin) bool {
		return slices.Contains(forbiddenBuiltins, b.Name)
	})
	// Keys only need to be unique: errors name the file the module was
	// parsed from, and a user's directory may hold a file named like one
	// of ours.
	mods := make(map[string]*ast.Module, len(s.modules))
	for i, m := range s.modules {
		mods[fmt.Sprintf("%03d:%s", i, m.file)] = m.mod
	}
	c := ast.NewCompiler().WithCapabilities(caps)
	c.Compile(mods)
	if c.Failed() {
		return nil, regoError(c.Errors)
	}
	return c, nil
}
