package iac

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/rampartsec/rampart/internal/scan/report"
)

// InputKind is the kind of file a check reads, and the kind of input
// document it is given.
type InputKind string

// Input kinds.
const (
	KindTerraform  InputKind = "terraform"
	KindKubernetes InputKind = "kubernetes"
	KindDockerfile InputKind = "dockerfile"
)

var inputKinds = []InputKind{KindDockerfile, KindKubernetes, KindTerraform}

// Size limits: larger files get a Note. Parsing HCL costs about 150
// bytes of memory per byte of source, YAML much less.
const (
	MaxTerraformSize  = 1 << 20
	MaxDockerfileSize = 1 << 20
	MaxYAMLSize       = 4 << 20
)

var maxSize = map[InputKind]int{
	KindTerraform:  MaxTerraformSize,
	KindDockerfile: MaxDockerfileSize,
	KindKubernetes: MaxYAMLSize,
}

// Options configure a Scanner.
type Options struct {
	// ExtraChecksDir, when set, is a directory whose .rego files (searched
	// recursively, *_test.rego excepted) are loaded beside the built-in
	// checks, following the contract in the package documentation.
	ExtraChecksDir string
}

// CheckInfo describes one check.
type CheckInfo struct {
	ID          string          `json:"id"`
	Kind        InputKind       `json:"kind"`
	Severity    report.Severity `json:"severity"`
	Title       string          `json:"title"`
	Remediation string          `json:"remediation"`
	// File is the .rego file that defines the check: a path under checks/
	// for built-in checks, the path on disk for the user's.
	File string `json:"file"`
	// BuiltIn is set for the checks that ship with Rampart.
	BuiltIn bool `json:"built_in"`
}

// Scanner runs the checks over files. It is safe for concurrent use.
type Scanner struct {
	checks  []CheckInfo
	queries map[InputKind]*kindQuery
}

// kindQuery evaluates every check of one input kind in one query.
type kindQuery struct {
	checks []CheckInfo // checks[i] is bound to the query variable c<i>
	query  rego.PreparedEvalQuery
	// single[i] evaluates checks[i] alone, to tell which check failed
	// when the whole query does.
	single []rego.PreparedEvalQuery
}

// New compiles the built-in checks, and the user's from
// opts.ExtraChecksDir, and prepares one query per input kind. A user
// check that does not parse, compile or follow the contract is an error
// naming its file and line.
func New(ctx context.Context, opts Options) (*Scanner, error) {
	builtins, err := builtinModules()
	if err != nil {
		return nil, err
	}
	set := &moduleSet{}
	for _, m := range builtins.modules {
		set.add(m)
	}
	if opts.ExtraChecksDir != "" {
		user, err := loadDir(opts.ExtraChecksDir)
		if err != nil {
			return nil, err
		}
		for _, m := range user {
			set.add(m)
		}
	}
	checks, err := set.checks()
	if err != nil {
		return nil, err
	}
	compiler, err := compile(set)
	if err != nil {
		return nil, err
	}
	s := &Scanner{checks: checks, queries: map[InputKind]*kindQuery{}}
	for _, kind := range inputKinds {
		var kq kindQuery
		var body []string
		for _, c := range checks {
			if c.Kind != kind {
				continue
			}
			q := fmt.Sprintf("c%d := data.rampart.checks.%s.%s.deny", len(kq.checks), kind, set.pkgName[c.ID])
			single, err := prepare(ctx, compiler, q)
			if err != nil {
				return nil, fmt.Errorf("prepare check %s: %w", c.ID, err)
			}
			body, kq.checks, kq.single = append(body, q), append(kq.checks, c), append(kq.single, single)
		}
		if len(body) == 0 {
			continue
		}
		if kq.query, err = prepare(ctx, compiler, strings.Join(body, "; ")); err != nil {
			return nil, fmt.Errorf("prepare %s checks: %w", kind, err)
		}
		s.queries[kind] = &kq
	}
	return s, nil
}

func prepare(ctx context.Context, compiler *ast.Compiler, query string) (rego.PreparedEvalQuery, error) {
	return rego.New(rego.Compiler(compiler), rego.Query(query)).PrepareForEval(ctx)
}

// Checks lists the built-in checks, ordered by id.
func Checks() []CheckInfo {
	b, err := builtinModules()
	if err != nil {
		return nil
	}
	return slices.Clone(b.checks)
}

// Checks lists the scanner's checks, built-in and the user's, ordered by
// id.
func (s *Scanner) Checks() []CheckInfo { return slices.Clone(s.checks) }

// kindOf tells the input kind of a file from its name alone.
func kindOf(p string) InputKind {
	base := path.Base(strings.ReplaceAll(p, `\`, "/"))
	lower := strings.ToLower(base)
	switch {
	case strings.HasSuffix(lower, ".tf"):
		return KindTerraform
	case strings.HasSuffix(lower, ".yaml"), strings.HasSuffix(lower, ".yml"):
		return KindKubernetes
	case strings.HasSuffix(lower, ".dockerignore"):
		return ""
	case lower == "dockerfile", lower == "containerfile",
		strings.HasSuffix(lower, ".dockerfile"), strings.HasPrefix(lower, "dockerfile."),
		strings.HasSuffix(lower, ".containerfile"), strings.HasPrefix(lower, "containerfile."):
		return KindDockerfile
	}
	return ""
}

// Applies reports, from the name alone, whether Scan reads the file:
// *.tf, *.yaml and *.yml, and Dockerfiles (Dockerfile, *.Dockerfile,
// Dockerfile.*, and the same for Containerfile).
func (s *Scanner) Applies(path string) bool {
	return s.queries[kindOf(path)] != nil
}

// Scan parses one file once and runs every check of its kind over it.
// path is the slash-separated path reported in findings. A file that
// cannot be parsed yields a Note, never an error: the rest of a scan goes
// on. YAML files without Kubernetes objects yield nothing.
func (s *Scanner) Scan(ctx context.Context, path string, data []byte) ([]report.Finding, []report.Note) {
	kind := kindOf(path)
	kq := s.queries[kind]
	if kq == nil {
		return nil, nil
	}
	note := func(format string, args ...any) []report.Note {
		return []report.Note{{Path: path, Message: fmt.Sprintf(format, args...)}}
	}
	if limit := maxSize[kind]; len(data) > limit {
		return nil, note("%s file of %d bytes is over the %d-byte limit; not scanned", kindName(kind), len(data), limit)
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return nil, note("%s file holds binary data; not scanned", kindName(kind))
	}
	doc, err := convert(kind, path, data)
	var notes []report.Note
	if err != nil {
		verb := "not scanned"
		if doc != nil {
			verb = "partly scanned"
		}
		notes = note("invalid %s, %s: %v", kindName(kind), verb, err)
	}
	if doc == nil {
		return nil, notes
	}
	if err := ctx.Err(); err != nil {
		return nil, append(notes, note("%s checks not run: %v", kind, err)...)
	}
	input, err := ast.InterfaceToValue(doc)
	if err != nil {
		return nil, append(notes, note("build check input: %v", err)...)
	}
	results, failed := kq.eval(ctx, input)
	if len(failed) > 0 && ctx.Err() != nil {
		return nil, append(notes, note("%s checks not run: %v", kind, ctx.Err())...)
	}
	for i, c := range kq.checks {
		if err, ok := failed[i]; ok {
			notes = append(notes, note("check %s failed: %v", c.ID, err)...)
		}
	}
	lines := lineCount(data)
	var findings []report.Finding
	var resources []string
	for i, c := range kq.checks {
		for _, r := range results[i] {
			f, resource := finding(c, path, r, lines)
			findings, resources = append(findings, f), append(resources, resource)
		}
	}
	order := make([]int, len(findings))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(i, j int) int {
		a, b := findings[i], findings[j]
		return cmp.Or(
			cmp.Compare(a.Location.StartLine, b.Location.StartLine),
			strings.Compare(a.RuleID, b.RuleID),
			strings.Compare(a.Description, b.Description),
		)
	})
	// Fingerprints hash (check, path, resource); a check that names the
	// same resource twice gets the second one numbered, in line order, so
	// that no two findings of a file share a fingerprint.
	sorted := make([]report.Finding, len(findings))
	seen := map[[2]string]int{}
	for n, i := range order {
		f := findings[i]
		key := [2]string{f.RuleID, resources[i]}
		if k := seen[key]; k > 0 {
			f.Fingerprint = report.Fingerprint("iac", f.RuleID, path, resources[i], strconv.Itoa(k))
		}
		seen[key]++
		sorted[n] = f
	}
	return sorted, notes
}

// eval runs every check on input and returns each check's deny set. When
// the query fails (a check with a runtime error: conflicting values,
// a cancelled context), each check runs alone so that one broken check
// costs only its own results; failed holds the errors by check index.
func (kq *kindQuery) eval(ctx context.Context, input ast.Value) (results [][]any, failed map[int]error) {
	results = make([][]any, len(kq.checks))
	bind := func(rs rego.ResultSet, i int) []any {
		if len(rs) == 0 {
			return nil
		}
		set, _ := rs[0].Bindings[fmt.Sprintf("c%d", i)].([]any)
		return set
	}
	rs, err := kq.query.Eval(ctx, rego.EvalParsedInput(input))
	if err == nil {
		for i := range kq.checks {
			results[i] = bind(rs, i)
		}
		return results, nil
	}
	failed = map[int]error{}
	for i, q := range kq.single {
		rs, err := q.Eval(ctx, rego.EvalParsedInput(input))
		if err != nil {
			failed[i] = err
			continue
		}
		results[i] = bind(rs, i)
	}
	return results, failed
}

func kindName(k InputKind) string {
	switch k {
	case KindTerraform:
		return "Terraform"
	case KindKubernetes:
		return "YAML"
	case KindDockerfile:
		return "Dockerfile"
	}
	return string(k)
}

// convert parses a file into its input document. The parsers are other
// people's code fed untrusted files: a panic in one becomes an error for
// this file instead of ending the scan.
func convert(kind InputKind, path string, data []byte) (doc map[string]any, err error) {
	defer func() {
		if r := recover(); r != nil {
			doc, err = nil, fmt.Errorf("parser failed: %v", r)
		}
	}()
	switch kind {
	case KindTerraform:
		return terraformInput(path, data)
	case KindKubernetes:
		return kubernetesInput(path, data)
	case KindDockerfile:
		return dockerfileInput(path, data)
	}
	return nil, nil
}

// finding turns one element of a check's deny set into a Finding, and
// returns the resource its fingerprint names. Lines outside the file are
// dropped rather than reported wrong.
func finding(c CheckInfo, path string, r any, lines int) (report.Finding, string) {
	obj, _ := r.(map[string]any)
	msg, ok := obj["message"].(string)
	if !ok {
		msg = fmt.Sprint(r)
	}
	start, end := intField(obj, "line"), intField(obj, "end_line")
	if start < 1 || start > lines {
		start, end = 0, 0
	}
	if end < start || end > lines {
		end = start
	}
	resource, _ := obj["resource"].(string)
	if resource == "" {
		resource = msg
	}
	return report.Finding{
		Kind:        report.KindMisconfiguration,
		RuleID:      c.ID,
		Title:       c.Title,
		Severity:    c.Severity,
		Location:    report.Location{Path: path, StartLine: start, EndLine: end},
		Fingerprint: report.Fingerprint("iac", c.ID, path, resource),
		Description: msg,
		Remediation: c.Remediation,
	}, resource
}

func intField(obj map[string]any, key string) int {
	switch v := obj[key].(type) {
	case int:
		return v
	case float64:
		return int(v)
	case interface{ Int64() (int64, error) }:
		if i, err := v.Int64(); err == nil {
			return int(i)
		}
	}
	return 0
}

// lineCount is the number of lines of data as any of the parsers counts
// them: "\n", "\r\n" and a lone "\r" each end a line.
func lineCount(data []byte) int {
	n := 1
	for i, b := range data {
		if b == '\n' || b == '\r' && (i+1 == len(data) || data[i+1] != '\n') {
			n++
		}
	}
	return n
}
