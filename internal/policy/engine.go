package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/exception"
)

// Limits of an evaluation.
const (
	// MaxInput caps an input document in bytes.
	MaxInput = 4 << 20
	// DefaultTimeout bounds one decision's evaluation.
	DefaultTimeout = 2 * time.Second
)

// Policy describes one loaded policy.
type Policy struct {
	ID          string `json:"id"`
	Gate        Gate   `json:"gate"`
	Title       string `json:"title"`
	Remediation string `json:"remediation"`
	// Mode is the policy's own default (from its metadata, else enforce);
	// the bundles' mode rules may change it per environment.
	Mode    Mode   `json:"mode"`
	Package string `json:"package"`
	File    string `json:"file"`
	BuiltIn bool   `json:"builtin"`
}

// EngineOptions tune an engine.
type EngineOptions struct {
	// Timeout bounds one evaluation (DefaultTimeout when zero).
	Timeout time.Duration
	// Settings are overlaid on the bundles' settings, key by key (the
	// service adds what it knows of this Rampart, such as its registry).
	Settings map[string]any
}

// Engine is a compiled set of bundles: every gate's policies prepared
// once as one query, evaluated concurrently by any number of callers. It
// is immutable; loading new bundles makes a new engine.
type Engine struct {
	revision   string
	bundles    []*Bundle
	policies   []Policy
	gates      map[Gate]*gateQuery
	modes      []ModeRule
	settings   map[string]any
	exceptions []exception.Exception
	timeout    time.Duration
	compiler   *ast.Compiler
	// results caches the admission gate's results (see cache.go).
	results *resultCache
	// nondeterministic is set when a policy (or a module it may use)
	// calls a built-in whose answer can change for the same input
	// (time.now_ns, io.jwt.decode_verify, rand.intn, …): its results
	// are then never cached.
	nondeterministic bool
}

// callsNondeterministic reports whether any compiled module calls a
// built-in OPA marks non-deterministic.
func callsNondeterministic(c *ast.Compiler) bool {
	found := false
	for _, m := range c.Modules {
		ast.WalkExprs(m, func(x *ast.Expr) bool {
			if found || !x.IsCall() {
				return found
			}
			if b, ok := ast.BuiltinMap[x.Operator().String()]; ok && b.Nondeterministic {
				found = true
			}
			return found
		})
		if found {
			break
		}
	}
	return found
}

// gateQuery evaluates every policy of a gate at once.
type gateQuery struct {
	policies []Policy
	query    rego.PreparedEvalQuery
	// single holds one query per policy, to tell which one failed.
	single []rego.PreparedEvalQuery
	// vars names each policy's binding: p0, p1, …
	vars []string
}

// forbiddenBuiltins reach outside the decision: the network or the
// environment of the process. Policies must decide from their input.
var forbiddenBuiltins = []string{"http.send", "net.lookup_ip_addr", "opa.runtime"}

// capabilities are this OPA's built-ins less forbiddenBuiltins.
func capabilities() *ast.Capabilities {
	caps := ast.CapabilitiesForThisVersion()
	caps.Builtins = slices.DeleteFunc(slices.Clone(caps.Builtins), func(b *ast.Builtin) bool {
		return slices.Contains(forbiddenBuiltins, b.Name)
	})
	return caps
}

// parsed is one bundle's content, parsed.
type parsed struct {
	modules    map[string]*ast.Module // file name → module (no tests)
	tests      map[string]*ast.Module
	config     Config
	exceptions []exception.Exception
}

// parseBundle parses a bundle's files; a file that does not parse is an
// Invalid error naming it and its line.
func parseBundle(b *Bundle) (*parsed, error) {
	p := &parsed{modules: map[string]*ast.Module{}, tests: map[string]*ast.Module{}}
	names := make([]string, 0, len(b.Files))
	for n := range b.Files {
		names = append(names, n)
	}
	slices.Sort(names)
	var errs []string
	for _, n := range names {
		src := b.Files[n]
		file := b.file(n)
		switch {
		case n == ConfigFile:
			cfg, err := parseConfig(file, src)
			if err != nil {
				errs = append(errs, err.Error())
			}
			p.config = cfg
		case n == ExceptionsFile:
			list, err := exception.Parse(file, bytes.NewReader(src), exception.KeyExceptions)
			if err != nil {
				errs = append(errs, err.Error())
			}
			p.exceptions = list
		case strings.HasSuffix(n, ".rego"):
			m, err := ast.ParseModuleWithOpts(file, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
			if err != nil {
				errs = append(errs, regoErrors(err)...)
				continue
			}
			if strings.HasSuffix(n, "_test.rego") {
				p.tests[file] = m
			} else {
				p.modules[file] = m
			}
		}
	}
	if len(errs) > 0 {
		return nil, apperr.E(apperr.Invalid, "policy bundle %s does not load:\n%s", b.Name, strings.Join(errs, "\n"))
	}
	return p, nil
}

// regoErrors words OPA's errors as FILE:LINE: message.
func regoErrors(err error) []string {
	var errs ast.Errors
	if !errors.As(err, &errs) {
		return []string{err.Error()}
	}
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		loc := ""
		if e.Location != nil {
			loc = fmt.Sprintf("%s:%d: ", e.Location.File, e.Location.Row)
		}
		out = append(out, loc+e.Message)
	}
	return out
}

// configPackage is where the merged settings are, for policies:
// data.rampart.config.settings.
const configPackage = "rampart.config"

// configModule renders the merged settings as a Rego module.
func configModule(settings map[string]any) (*ast.Module, error) {
	v, err := ast.InterfaceToValue(settings)
	if err != nil {
		return nil, fmt.Errorf("policy settings: %w", err)
	}
	src := "package " + configPackage + "\n\nsettings := " + v.String() + "\n"
	return ast.ParseModuleWithOpts("(settings)", src, ast.ParserOptions{RegoVersion: ast.RegoV1})
}

// NewEngine parses, checks and compiles bundles (the built-in library
// first, then the others) and prepares every gate's query. A bundle that
// does not parse or compile, or a policy that breaks the contract of the
// package documentation, is refused with the file and line at fault.
func NewEngine(ctx context.Context, bundles []*Bundle, opt EngineOptions) (*Engine, error) {
	if len(bundles) == 0 {
		return nil, errors.New("policy: no bundle to load")
	}
	e := &Engine{bundles: bundles, gates: map[Gate]*gateQuery{}, timeout: opt.Timeout, settings: map[string]any{}, results: newResultCache()}
	if e.timeout <= 0 {
		e.timeout = DefaultTimeout
	}
	modules := map[string]*ast.Module{}
	var revs []string
	var policyModules []struct {
		file    string
		mod     *ast.Module
		builtIn bool
	}
	for _, b := range bundles {
		p, err := parseBundle(b)
		if err != nil {
			return nil, err
		}
		revs = append(revs, b.Revision)
		e.settings = mergeSettings(e.settings, p.config.Settings)
		e.modes = append(e.modes, p.config.Modes...)
		e.exceptions = append(e.exceptions, p.exceptions...)
		for f, m := range p.modules {
			modules[f] = m
			policyModules = append(policyModules, struct {
				file    string
				mod     *ast.Module
				builtIn bool
			}{f, m, b.BuiltIn})
		}
	}
	e.settings = mergeSettings(e.settings, opt.Settings)
	e.revision = strings.Join(revs, "+")
	cfgMod, err := configModule(e.settings)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Invalid, err.Error())
	}
	modules["(settings)"] = cfgMod

	slices.SortFunc(policyModules, func(a, b struct {
		file    string
		mod     *ast.Module
		builtIn bool
	}) int {
		return strings.Compare(a.file, b.file)
	})
	byID := map[string]string{}
	byPkg := map[string]string{}
	var problems []string
	for _, pm := range policyModules {
		pol, ok, err := policyOf(pm.file, pm.mod)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if !ok {
			continue
		}
		pol.BuiltIn = pm.builtIn
		if other, dup := byPkg[pol.Package]; dup {
			problems = append(problems, fmt.Sprintf("%s:%d: package %s is also declared by %s: each policy has a package of its own",
				pm.file, pm.mod.Package.Location.Row, pol.Package, other))
			continue
		}
		byPkg[pol.Package] = pm.file
		if other, dup := byID[pol.ID]; dup {
			problems = append(problems, fmt.Sprintf("%s:%d: policy id %s is also used by %s", pm.file, pm.mod.Package.Location.Row, pol.ID, other))
			continue
		}
		byID[pol.ID] = pm.file
		e.policies = append(e.policies, pol)
	}
	if len(problems) > 0 {
		return nil, apperr.E(apperr.Invalid, "policies break the policy contract:\n%s", strings.Join(problems, "\n"))
	}
	slices.SortFunc(e.policies, func(a, b Policy) int { return strings.Compare(a.ID, b.ID) })

	c := ast.NewCompiler().WithCapabilities(capabilities())
	c.Compile(modules)
	if c.Failed() {
		return nil, apperr.E(apperr.Invalid, "policies do not compile:\n%s", strings.Join(regoErrors(c.Errors), "\n"))
	}
	e.compiler = c
	e.nondeterministic = callsNondeterministic(c)
	for _, g := range Gates() {
		var gq gateQuery
		var body []string
		for _, p := range e.policies {
			if p.Gate != g {
				continue
			}
			q := fmt.Sprintf("p%d = data.%s.deny", len(gq.policies), p.Package)
			single, err := prepare(ctx, c, q)
			if err != nil {
				return nil, fmt.Errorf("prepare policy %s: %w", p.ID, err)
			}
			gq.policies, gq.single, body = append(gq.policies, p), append(gq.single, single), append(body, q)
			gq.vars = append(gq.vars, fmt.Sprintf("p%d", len(gq.vars)))
		}
		if len(body) == 0 {
			continue
		}
		if gq.query, err = prepare(ctx, c, strings.Join(body, "; ")); err != nil {
			return nil, fmt.Errorf("prepare %s gate: %w", g, err)
		}
		e.gates[g] = &gq
	}
	return e, nil
}

func prepare(ctx context.Context, c *ast.Compiler, query string) (rego.PreparedEvalQuery, error) {
	// Strict built-in errors: a built-in that fails (a bad regex, a
	// conversion of the wrong type) is an evaluation error, which fails
	// closed, rather than an undefined expression, which would let a deny
	// rule quietly not fire.
	return rego.New(rego.Compiler(c), rego.Query(query), rego.StrictBuiltinErrors(true)).PrepareForEval(ctx)
}

// policyOf reads the policy a module declares: ok is false for modules
// outside rampart.gates (helpers).
func policyOf(file string, m *ast.Module) (Policy, bool, error) {
	path := m.Package.Path
	if len(path) < 3 || path[1].String() != `"rampart"` || path[2].String() != `"gates"` {
		return Policy{}, false, nil
	}
	pkg := strings.TrimPrefix(path.String(), "data.")
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s", file, m.Package.Location.Row, fmt.Sprintf(format, args...))
	}
	if len(path) != 5 {
		return Policy{}, false, fail("package %s: a policy's package is rampart.gates.<gate>.<name>", pkg)
	}
	elem, _ := path[3].Value.(ast.String)
	gate, ok := gateOfPackage(string(elem))
	if !ok {
		return Policy{}, false, fail("package %s: unknown gate %q (want pre_merge, image, pre_deploy, iac_plan, admission or runtime)", pkg, string(elem))
	}
	name, ok := path[4].Value.(ast.String)
	if !ok || !ast.IsVarCompatibleString(string(name)) {
		return Policy{}, false, fail("package %s: the policy's name must be an identifier", pkg)
	}
	var meta *ast.Rule
	hasDeny := false
	for _, r := range m.Rules {
		switch r.Head.Ref().String() {
		case "metadata":
			meta = r
		case "deny":
			if r.Head.RuleKind() != ast.MultiValue {
				return Policy{}, false, fmt.Errorf("%s:%d: deny must be a set: write `deny contains {\"message\": …, \"fix\": …} if { … }`", file, r.Location.Row)
			}
			hasDeny = true
		}
	}
	if meta == nil {
		return Policy{}, false, fail("no metadata: declare `metadata := {\"id\": …, \"title\": …, \"remediation\": …}`")
	}
	if !hasDeny {
		return Policy{}, false, fail("no deny rule: declare `deny contains {\"message\": …} if { … }`")
	}
	if meta.Head.Value == nil || !meta.Body.Equal(ast.NewBody(ast.NewExpr(ast.BooleanTerm(true)))) {
		return Policy{}, false, fmt.Errorf("%s:%d: metadata must be a literal object", file, meta.Location.Row)
	}
	v, err := ast.JSON(meta.Head.Value.Value)
	obj, ok := v.(map[string]any)
	if err != nil || !ok {
		return Policy{}, false, fmt.Errorf("%s:%d: metadata must be a literal object", file, meta.Location.Row)
	}
	p := Policy{Gate: gate, Package: pkg, File: file, Mode: ModeEnforce}
	for k, dst := range map[string]*string{"id": &p.ID, "title": &p.Title, "remediation": &p.Remediation} {
		s, _ := obj[k].(string)
		if strings.TrimSpace(s) == "" {
			return Policy{}, false, fmt.Errorf("%s:%d: metadata has no %s string", file, meta.Location.Row, k)
		}
		*dst = s
	}
	if len(p.ID) > 64 || strings.ContainsAny(p.ID, " \t\r\n*?[") {
		return Policy{}, false, fmt.Errorf("%s:%d: policy id %q: at most 64 characters, no spaces or glob characters", file, meta.Location.Row, p.ID)
	}
	if ms, ok := obj["mode"]; ok {
		s, _ := ms.(string)
		m, err := ParseMode(s)
		if err != nil {
			return Policy{}, false, fmt.Errorf("%s:%d: metadata mode %v: want enforce, warn or audit", file, meta.Location.Row, ms)
		}
		p.Mode = m
	}
	return p, true, nil
}

// Revision names the bundles the engine was built from.
func (e *Engine) Revision() string { return e.revision }

// Policies lists the loaded policies, ordered by id.
func (e *Engine) Policies() []Policy { return slices.Clone(e.policies) }

// Modes lists the mode rules of every bundle, in the order they apply.
func (e *Engine) Modes() []ModeRule { return slices.Clone(e.modes) }

// Settings returns the merged settings the policies read.
func (e *Engine) Settings() map[string]any { return e.settings }

// Exceptions lists the exceptions kept in the bundles.
func (e *Engine) Exceptions() []exception.Exception { return slices.Clone(e.exceptions) }

// Bundles lists the bundles the engine was built from.
func (e *Engine) Bundles() []*Bundle { return slices.Clone(e.bundles) }

// ModeOf returns the mode of policy p for decisions in environment env.
func (e *Engine) ModeOf(p Policy, env string) Mode {
	m := p.Mode
	for _, r := range e.modes {
		if r.matches(p.ID, env) {
			m = r.Mode
		}
	}
	return m
}

// Input is what a gate is asked to judge.
type Input struct {
	// OrgID is the org the decision is recorded under.
	OrgID int64
	// Subject names what the decision was asked for, where it is shown:
	// "pr:acme/web#12", "image:registry/acme/web@sha256:…",
	// "release:web@1.4.0", "run:812", "k8s:prod/shop/Pod/web".
	Subject string
	// Environment is the target environment, if any: mode rules and
	// exceptions scoped to an environment match it.
	Environment string
	// Repository is the source repository (org/name), if any.
	Repository string
	// Caller names the component asking when no signed-in principal
	// does (the registry, a pipeline run); the decision log records it.
	Caller string
	// Document is the gate's input document: a JSON encoding
	// ([]byte, json.RawMessage) or any value that encodes to a JSON
	// object.
	Document any
}

// decodeInput reads, limits and checks a gate's input document.
func decodeInput(gate Gate, doc any) (document, error) {
	v, err := parseInput(gate, doc)
	if err != nil {
		return document{}, err
	}
	return checkInput(gate, v)
}

// parseInput decodes a gate's input document (numbers as json.Number)
// and checks that it is one JSON object within MaxInput.
func parseInput(gate Gate, doc any) (map[string]any, error) {
	var raw []byte
	switch d := doc.(type) {
	case nil:
		return nil, apperr.InvalidField("input", "no input document: send the %s gate's input as a JSON object", gate)
	case []byte:
		raw = d
	case json.RawMessage:
		raw = d
	case string:
		raw = []byte(d)
	default:
		var err error
		if raw, err = json.Marshal(d); err != nil {
			return nil, apperr.Wrap(err, apperr.Invalid, "the input document does not encode as JSON")
		}
	}
	if len(raw) > MaxInput {
		return nil, apperr.E(apperr.TooLarge, "the input document is %d bytes, over the %d-byte limit", len(raw), MaxInput)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, inputJSONError(err)
	}
	if _, err := dec.Token(); err == nil {
		return nil, apperr.InvalidField("input", "the input document holds more than one JSON value")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, apperr.InvalidField("input", "the input document must be a JSON object")
	}
	return m, nil
}

func inputJSONError(err error) error {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		return apperr.InvalidField("input", "the input document is not valid JSON: %s at byte %d", syn.Error(), syn.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return apperr.InvalidField("input", "the input document is empty or truncated JSON")
	}
	return apperr.Wrap(err, apperr.Invalid, "the input document is not valid JSON")
}

// rawResult is what one policy said.
type rawResult struct {
	policy Policy
	deny   []any
	err    error
}

// evaluate runs every policy of gate on doc, or takes what they said from
// the result cache when the gate caches them. When the combined query
// fails, each policy runs alone so that one broken policy costs only its
// own result; a timeout fails every policy not yet evaluated.
func (e *Engine) evaluate(ctx context.Context, gate Gate, doc *document) []rawResult {
	gq := e.gates[gate]
	if gq == nil {
		return nil
	}
	if e.nondeterministic {
		return e.evaluateQuery(ctx, gq, doc)
	}
	if doc.key != "" {
		if out, ok := e.results.get(doc.key); ok {
			return out
		}
	}
	out := e.evaluateQuery(ctx, gq, doc)
	if doc.key != "" && !slices.ContainsFunc(out, func(r rawResult) bool { return r.err != nil }) {
		e.results.put(doc.key, out)
	}
	return out
}

func (e *Engine) evaluateQuery(ctx context.Context, gq *gateQuery, doc *document) []rawResult {
	out := make([]rawResult, len(gq.policies))
	for i, p := range gq.policies {
		out[i].policy = p
	}
	input, err := doc.regoValue()
	if err != nil {
		for i := range out {
			out[i].err = err
		}
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	bind := func(rs rego.ResultSet, i int) []any {
		if len(rs) == 0 {
			return nil
		}
		set, _ := rs[0].Bindings[gq.vars[i]].([]any)
		return set
	}
	rs, err := gq.query.Eval(ctx, rego.EvalParsedInput(input))
	if err == nil {
		for i := range out {
			out[i].deny = bind(rs, i)
		}
		return out
	}
	if ctx.Err() != nil {
		for i := range out {
			out[i].err = evalError(ctx, err)
		}
		return out
	}
	for i, q := range gq.single {
		rs, err := q.Eval(ctx, rego.EvalParsedInput(input))
		if err != nil {
			out[i].err = evalError(ctx, err)
			continue
		}
		out[i].deny = bind(rs, i)
	}
	return out
}

// evalError words an evaluation failure for the decision.
func evalError(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || topdown.IsCancel(err) {
		return errors.New("evaluation timed out")
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return errors.New("evaluation cancelled")
	}
	var te *topdown.Error
	if errors.As(err, &te) {
		loc := ""
		if te.Location != nil {
			loc = fmt.Sprintf(" at %s:%d", te.Location.File, te.Location.Row)
		}
		return fmt.Errorf("%s%s", te.Message, loc)
	}
	return err
}

// violation turns one element of a policy's deny set into a Violation.
func violation(p Policy, r any, mode Mode) Violation {
	v := Violation{Policy: p.ID, Title: p.Title, Fix: p.Remediation, Mode: mode}
	str := func(m map[string]any, k string) string {
		s, _ := m[k].(string)
		return clip(s, 2000)
	}
	switch x := r.(type) {
	case string:
		v.Message = clip(x, 2000)
	case map[string]any:
		v.Message = str(x, "message")
		if v.Message == "" {
			v.Message = clip(fmt.Sprint(x), 2000)
		}
		if f := str(x, "fix"); f != "" {
			v.Fix = f
		}
		v.Image, v.Resource, v.Path, v.Fingerprint = str(x, "image"), str(x, "resource"), str(x, "path"), str(x, "fingerprint")
		if ids, ok := x["ids"].([]any); ok {
			for _, id := range ids {
				if s, ok := id.(string); ok && s != "" && len(v.IDs) < 32 {
					v.IDs = append(v.IDs, clip(s, 200))
				}
			}
		}
	default:
		v.Message = clip(fmt.Sprint(x), 2000)
	}
	return v
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// Decide evaluates gate on in and assembles the decision: each violation
// goes to Deny, Warnings or Audited by its policy's mode in the input's
// environment, unless an exception in force (of the bundles or extra)
// sets it aside. A policy that cannot be evaluated counts as a violation
// in its mode: under enforce the gate fails closed. The decision is not
// recorded; see Service.Decide.
func (e *Engine) Decide(ctx context.Context, gate Gate, in Input, extra []exception.Exception, now time.Time) (Decision, error) {
	if _, err := ParseGate(string(gate)); err != nil {
		return Decision{}, err
	}
	doc, err := decodeInput(gate, in.Document)
	if err != nil {
		return Decision{}, err
	}
	return e.decide(ctx, gate, in, doc, extra, now), nil
}

func (e *Engine) decide(ctx context.Context, gate Gate, in Input, doc document, extra []exception.Exception, now time.Time) Decision {
	start := time.Now()
	d := Decision{Gate: gate, OrgID: in.OrgID, Subject: in.Subject, Environment: in.Environment, Repository: in.Repository,
		Revision: e.revision, InputDigest: doc.digest, At: now.UTC(),
		Deny: []Violation{}, Warnings: []Violation{}, Audited: []Violation{}, Excepted: []Violation{}, Expired: []Violation{}, Errors: []EvalError{}}
	exceptions := append(slices.Clip(e.exceptions), extra...)
	for _, r := range e.evaluate(ctx, gate, &doc) {
		mode := e.ModeOf(r.policy, in.Environment)
		if r.err != nil {
			d.Errors = append(d.Errors, EvalError{Policy: r.policy.ID, Mode: mode, Message: r.err.Error()})
			v := Violation{Policy: r.policy.ID, Title: r.policy.Title, Mode: mode,
				Message: fmt.Sprintf("the policy could not be evaluated (%v); under enforce the gate fails closed", r.err),
				Fix:     "Fix the input or the policy, then ask again; the error is in the decision log."}
			d.add(v)
			continue
		}
		vs := make([]Violation, 0, len(r.deny))
		for _, x := range r.deny {
			vs = append(vs, violation(r.policy, x, mode))
		}
		slices.SortFunc(vs, func(a, b Violation) int { return strings.Compare(a.Message, b.Message) })
		for _, v := range vs {
			target := exception.Target{IDs: append([]string{v.Policy}, v.IDs...), Fingerprint: v.Fingerprint, Path: v.Path,
				Repository: in.Repository, Image: v.Image, Environment: in.Environment}
			var applied, expired *exception.Exception
			for i := range exceptions {
				x := &exceptions[i]
				if !x.Matches(target) {
					continue
				}
				if !x.Expired(now) {
					applied = x
					break
				}
				if expired == nil {
					expired = x
				}
			}
			switch {
			case applied != nil:
				v.Exception = applied
				d.Excepted = append(d.Excepted, v)
				continue
			case expired != nil:
				ev := v
				ev.Exception = expired
				d.Expired = append(d.Expired, ev)
			}
			d.add(v)
		}
	}
	d.Allow = len(d.Deny) == 0
	d.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	return d
}

// add files a violation by its mode.
func (d *Decision) add(v Violation) {
	switch v.Mode {
	case ModeWarn:
		d.Warnings = append(d.Warnings, v)
	case ModeAudit:
		d.Audited = append(d.Audited, v)
	default:
		d.Deny = append(d.Deny, v)
	}
}
