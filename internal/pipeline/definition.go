package pipeline

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	yaml "go.yaml.in/yaml/v3"
)

// DefinitionPath is where a repository keeps its pipeline.
const DefinitionPath = ".rampart/pipeline.yaml"

// Limits of a definition.
const (
	MaxDefinitionBytes = 256 << 10
	MaxJobs            = 256 // after matrix expansion
	MaxSteps           = 100 // per job
	MaxMatrix          = 64  // combinations per job
	MaxTimeout         = 24 * time.Hour
	DefaultTimeout     = time.Hour
	DefaultStepTimeout = 0 // a step is bounded by its job unless it says otherwise
)

// Step types.
const (
	StepRun        = "run"
	StepScan       = "scan"
	StepBuildImage = "build-image"
	StepPushImage  = "push-image"
	StepSign       = "sign"
	StepSBOM       = "sbom"
	StepDeploy     = "deploy"
)

// stepParams lists each built-in step type's parameters; required ones
// end in "!".
var stepParams = map[string][]string{
	StepScan:       {"path", "fail-on"},
	StepBuildImage: {"context", "dockerfile", "tag!", "target", "build-args"},
	StepPushImage:  {"image!", "to!"},
	StepSign:       {"image!", "key"},
	StepSBOM:       {"image!", "format"},
	StepDeploy:     {"environment!", "image!", "strategy", "reason", "approval-timeout"},
}

// Executors a job may ask for.
const (
	ExecutorContainer = "container"
	ExecutorHost      = "host"
)

// Definition is a validated pipeline.
type Definition struct {
	On     Triggers
	Env    map[string]string
	Stages []string
	// Jobs in definition order, matrix expanded.
	Jobs []*Job
}

// Triggers say which events start a run.
type Triggers struct {
	Push        *BranchFilter // nil: pushes start no run
	PullRequest *BranchFilter
	Manual      bool
	Schedules   []Schedule
	// defaulted is set when the file has no `on:` (pushes run, and
	// manual runs are allowed).
	defaulted bool
}

// BranchFilter selects branches (and tags, for pushes) and changed paths by
// glob ("main", "release/*", "**"). Empty lists match everything, except
// Tags: a push of a tag starts a run only when Tags matches it.
type BranchFilter struct {
	Branches    []string
	Tags        []string
	Paths       []string
	PathsIgnore []string
}

// Schedule is a cron trigger.
type Schedule struct {
	Cron   string
	Branch string // default: the repository's default branch
	spec   cron.Schedule
	Line   int
}

// Next returns the schedule's next time after t.
func (s Schedule) Next(t time.Time) time.Time { return s.spec.Next(t) }

// Limits bound a job's resources; zero means the executor's default.
type Limits struct {
	CPUs   float64 `json:"cpus,omitempty"`
	Memory int64   `json:"memory,omitempty"`
	Pids   int64   `json:"pids,omitempty"`
	Disk   int64   `json:"disk,omitempty"` // workspace size
	Log    int64   `json:"log,omitempty"`  // bytes of log kept before the job fails
}

// Cache is a set of workspace paths saved after a job and restored
// before the next job of the repository asking for the same key.
type Cache struct {
	Key   string   `json:"key"`
	Paths []string `json:"paths"`
}

// Job is one job of a definition (one matrix combination).
type Job struct {
	Name     string            `json:"name"`
	Base     string            `json:"base"` // the name in the file, before matrix expansion
	Stage    string            `json:"stage,omitempty"`
	Needs    []string          `json:"needs,omitempty"`
	If       string            `json:"if,omitempty"`
	Image    string            `json:"image,omitempty"`
	Executor string            `json:"executor,omitempty"`
	Network  bool              `json:"network,omitempty"`
	Env      map[string]string `json:"env,omitempty"`
	Matrix   map[string]string `json:"matrix,omitempty"`
	Timeout  time.Duration     `json:"timeout"`
	Limits   Limits            `json:"limits"`
	// Secrets maps environment variable names to secret references.
	Secrets   map[string]string `json:"secrets,omitempty"`
	Artifacts []string          `json:"artifacts,omitempty"`
	Caches    []Cache           `json:"caches,omitempty"`
	Steps     []Step            `json:"steps"`
	Line      int               `json:"line"`
	cond      *Condition
}

// Step is one step of a job.
type Step struct {
	Name            string            `json:"name"`
	Type            string            `json:"type"`
	Run             string            `json:"run,omitempty"`
	With            map[string]string `json:"with,omitempty"`
	Env             map[string]string `json:"env,omitempty"`
	If              string            `json:"if,omitempty"`
	Timeout         time.Duration     `json:"timeout,omitempty"`
	ContinueOnError bool              `json:"continue_on_error,omitempty"`
	Line            int               `json:"line"`
}

// Error is one problem of a definition, at a line of the file.
type Error struct {
	Line int
	Msg  string
}

func (e Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", DefinitionPath, e.Line, e.Msg)
	}
	return DefinitionPath + ": " + e.Msg
}

// Errors are every problem found in a definition, in line order.
type Errors []Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

type parseState struct {
	errs Errors
}

func (p *parseState) errorf(n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	if len(p.errs) < 50 {
		p.errs = append(p.errs, Error{Line: line, Msg: fmt.Sprintf(format, args...)})
	}
}

// Parse parses and validates a definition. Every problem found is
// reported, each with its line, as Errors.
func Parse(data []byte) (*Definition, error) {
	if len(data) > MaxDefinitionBytes {
		return nil, Errors{{Msg: fmt.Sprintf("the file is %d bytes, over the limit of %d", len(data), MaxDefinitionBytes)}}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(err)
	}
	p := &parseState{}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, Errors{{Line: 1, Msg: "the file is empty: it needs at least `jobs:`"}}
	}
	if hasAlias(&doc, 0) {
		return nil, Errors{{Line: 1, Msg: "YAML anchors and aliases are not supported"}}
	}
	root := doc.Content[0]
	d := &Definition{Env: map[string]string{}}
	fields := p.mapping(root, "the file", "on", "env", "stages", "jobs")
	if fields == nil {
		return nil, p.errs
	}
	d.On = p.triggers(fields["on"])
	d.Env = p.env(fields["env"], "env")
	if n := fields["stages"]; n != nil {
		d.Stages = p.strings(n, "stages")
		seen := map[string]bool{}
		for _, s := range d.Stages {
			if !validName.MatchString(s) {
				p.errorf(n, "stage name %q: use letters, digits, '-' and '_'", s)
			}
			if seen[s] {
				p.errorf(n, "stage %q listed twice", s)
			}
			seen[s] = true
		}
	}
	jobs := fields["jobs"]
	if jobs == nil {
		p.errorf(root, "missing `jobs:`: a pipeline needs at least one job")
		return nil, p.errs
	}
	p.jobs(d, jobs)
	for _, j := range d.Jobs {
		for k, v := range d.Env {
			if _, ok := j.Env[k]; !ok {
				if j.Env == nil {
					j.Env = map[string]string{}
				}
				j.Env[k] = v
			}
		}
	}
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool { return p.errs[i].Line < p.errs[j].Line })
		return nil, p.errs
	}
	return d, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func yamlError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		err = errors.New(te.Errors[0])
	}
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Errors{{Line: line, Msg: "invalid YAML: " + m[2]}}
	}
	return Errors{{Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")}}
}

func hasAlias(n *yaml.Node, depth int) bool {
	if depth > 100 {
		return true
	}
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return true
	}
	for _, c := range n.Content {
		if hasAlias(c, depth+1) {
			return true
		}
	}
	return false
}

// mapping returns the values of a mapping node by key, reporting keys not
// in allowed and duplicates. nil when n is not a mapping.
func (p *parseState) mapping(n *yaml.Node, what string, allowed ...string) map[string]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s must be a mapping", what)
		return nil
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errorf(k, "keys of %s must be strings", what)
			continue
		}
		if allowed != nil && !slices.Contains(allowed, k.Value) {
			p.errorf(k, "unknown key %q in %s (allowed: %s)", k.Value, what, strings.Join(allowed, ", "))
			continue
		}
		if _, dup := out[k.Value]; dup {
			p.errorf(k, "key %q appears twice in %s", k.Value, what)
			continue
		}
		out[k.Value] = v
	}
	return out
}

func (p *parseState) str(n *yaml.Node, what string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errorf(n, "%s must be a string", what)
		return ""
	}
	return n.Value
}

func (p *parseState) boolean(n *yaml.Node, what string) bool {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		p.errorf(n, "%s must be true or false", what)
		return false
	}
	return n.Value == "true"
}

// strings accepts a sequence of scalars or a single scalar.
func (p *parseState) strings(n *yaml.Node, what string) []string {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		return []string{n.Value}
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "%s must be a list of strings", what)
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for _, c := range n.Content {
		if c.Kind != yaml.ScalarNode {
			p.errorf(c, "%s must be a list of strings", what)
			continue
		}
		out = append(out, c.Value)
	}
	return out
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

func (p *parseState) env(n *yaml.Node, what string) map[string]string {
	out := map[string]string{}
	if n == nil {
		return out
	}
	m := p.mapping(n, what)
	for k, v := range m {
		if !envName.MatchString(k) {
			p.errorf(v, "%s: %q is not a valid environment variable name", what, k)
			continue
		}
		if v.Kind != yaml.ScalarNode {
			p.errorf(v, "%s.%s must be a string", what, k)
			continue
		}
		if len(v.Value) > 32<<10 {
			p.errorf(v, "%s.%s is longer than 32 KiB", what, k)
		}
		out[k] = v.Value
	}
	return out
}

func (p *parseState) duration(n *yaml.Node, what string) time.Duration {
	s := p.str(n, what)
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		p.errorf(n, "%s %q is not a positive duration like 90s, 10m or 1h30m", what, s)
		return 0
	}
	if d > MaxTimeout {
		p.errorf(n, "%s %s is over the maximum of %s", what, d, MaxTimeout)
		return 0
	}
	return d
}

var sizeRe = regexp.MustCompile(`^(\d+)(|k|Ki|M|Mi|G|Gi)$`)

// parseSize parses "512Mi", "1G", "4096".
func parseSize(s string) (int64, bool) {
	m := sizeRe.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, false
	}
	mult := map[string]int64{"": 1, "k": 1e3, "Ki": 1 << 10, "M": 1e6, "Mi": 1 << 20, "G": 1e9, "Gi": 1 << 30}[m[2]]
	if v > (1<<50)/mult {
		return 0, false
	}
	return v * mult, true
}

func (p *parseState) triggers(n *yaml.Node) Triggers {
	if n == nil {
		// No `on:` at all: every push runs.
		return Triggers{Push: &BranchFilter{}, defaulted: true}
	}
	var t Triggers
	var f map[string]*yaml.Node
	if n.Kind == yaml.SequenceNode || n.Kind == yaml.ScalarNode {
		// on: [push, pull_request]
		f = map[string]*yaml.Node{}
		for _, s := range p.strings(n, "on") {
			switch s {
			case "push", "pull_request", "manual":
				f[s] = &yaml.Node{Kind: yaml.MappingNode, Line: n.Line}
			default:
				p.errorf(n, "unknown trigger %q (push, pull_request, manual, schedule)", s)
			}
		}
	} else {
		f = p.mapping(n, "on", "push", "pull_request", "manual", "schedule")
	}
	if v := f["push"]; v != nil {
		t.Push = p.filter(v, "on.push", true)
	}
	if v := f["pull_request"]; v != nil {
		t.PullRequest = p.filter(v, "on.pull_request", false)
	}
	if v := f["manual"]; v != nil {
		if v.Kind == yaml.MappingNode && len(v.Content) == 0 {
			t.Manual = true
		} else {
			t.Manual = p.boolean(v, "on.manual")
		}
	}
	if v := f["schedule"]; v != nil {
		if v.Kind != yaml.SequenceNode {
			p.errorf(v, "on.schedule must be a list of {cron: \"…\"}")
		} else {
			for _, item := range v.Content {
				sf := p.mapping(item, "a schedule", "cron", "branch")
				if sf == nil {
					continue
				}
				s := Schedule{Line: item.Line}
				if c := sf["cron"]; c != nil {
					s.Cron = p.str(c, "cron")
					spec, err := cron.ParseStandard(s.Cron)
					if err != nil {
						p.errorf(c, "cron %q: %v (five fields: minute hour day-of-month month day-of-week)", s.Cron, err)
					}
					if strings.HasPrefix(strings.TrimSpace(s.Cron), "@every") {
						p.errorf(c, "cron %q: @every is not supported; use five cron fields (at most once a minute)", s.Cron)
					}
					if strings.HasPrefix(strings.TrimSpace(s.Cron), "TZ=") || strings.HasPrefix(strings.TrimSpace(s.Cron), "CRON_TZ=") {
						p.errorf(c, "cron %q: time zones are not supported; schedules are in UTC", s.Cron)
					}
					s.spec = spec
				} else {
					p.errorf(item, "a schedule needs `cron:`")
				}
				if b := sf["branch"]; b != nil {
					s.Branch = p.str(b, "branch")
				}
				t.Schedules = append(t.Schedules, s)
			}
		}
	}
	return t
}

func (p *parseState) filter(n *yaml.Node, what string, tags bool) *BranchFilter {
	bf := &BranchFilter{}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return bf
	}
	allowed := []string{"branches", "paths", "paths-ignore"}
	if tags {
		allowed = append(allowed, "tags")
	}
	f := p.mapping(n, what, allowed...)
	get := func(k string) []string {
		v := f[k]
		if v == nil {
			return nil
		}
		out := p.strings(v, what+"."+k)
		for _, g := range out {
			if _, err := path.Match(strings.ReplaceAll(g, "**", "*"), ""); err != nil || g == "" {
				p.errorf(v, "%s.%s: bad pattern %q", what, k, g)
			}
		}
		return out
	}
	bf.Branches, bf.Tags, bf.Paths, bf.PathsIgnore = get("branches"), get("tags"), get("paths"), get("paths-ignore")
	return bf
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`)

var jobKeys = []string{"stage", "needs", "if", "image", "executor", "network", "env", "matrix", "timeout",
	"limits", "secrets", "artifacts", "caches", "steps"}

type rawJob struct {
	job       Job
	matrix    []map[string]string
	needsNode *yaml.Node
}

func (p *parseState) jobs(d *Definition, n *yaml.Node) {
	if n.Kind != yaml.MappingNode || len(n.Content) == 0 {
		p.errorf(n, "jobs must be a mapping of job names to jobs, with at least one job")
		return
	}
	var raws []*rawJob
	names := map[string]*rawJob{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name := k.Value
		if !validName.MatchString(name) {
			p.errorf(k, "job name %q: use letters, digits, '-' and '_' (at most 63)", name)
			continue
		}
		if names[name] != nil {
			p.errorf(k, "job %q is defined twice", name)
			continue
		}
		r := p.job(d, name, k, v)
		if r == nil {
			continue
		}
		names[name] = r
		raws = append(raws, r)
	}
	// needs: known jobs, then stages as implicit needs, then no cycles.
	for _, r := range raws {
		for _, need := range r.job.Needs {
			if need == r.job.Base {
				p.errorf(r.needsNode, "job %q needs itself", need)
			} else if names[need] == nil {
				p.errorf(r.needsNode, "job %q needs %q, which is not a job of this pipeline", r.job.Base, need)
			}
		}
		if len(d.Stages) > 0 {
			idx := slices.Index(d.Stages, r.job.Stage)
			for _, o := range raws {
				if slices.Index(d.Stages, o.job.Stage) < idx && !slices.Contains(r.job.Needs, o.job.Base) {
					r.job.Needs = append(r.job.Needs, o.job.Base)
				}
			}
		}
	}
	if len(p.errs) > 0 {
		return
	}
	if cyc := findCycle(raws); cyc != nil {
		p.errorf(names[cyc[0]].needsNode, "needs form a cycle: %s", strings.Join(cyc, " → "))
		return
	}
	// Expand matrices: needs on a matrix job mean all its combinations.
	expanded := map[string][]string{}
	total := 0
	for _, r := range raws {
		total += max(1, len(r.matrix))
	}
	if total > MaxJobs {
		p.errorf(n, "the pipeline has %d jobs after matrix expansion, over the limit of %d", total, MaxJobs)
		return
	}
	for _, r := range raws {
		if len(r.matrix) == 0 {
			j := r.job
			expanded[r.job.Base] = []string{j.Name}
			d.Jobs = append(d.Jobs, &j)
			continue
		}
		for _, combo := range r.matrix {
			j := r.job
			j.Matrix = combo
			j.Name = matrixName(j.Base, combo)
			j.Env = substituteMap(j.Env, combo)
			j.Image = substitute(j.Image, combo)
			j.Steps = slices.Clone(j.Steps)
			for i := range j.Steps {
				j.Steps[i].Run = substitute(j.Steps[i].Run, combo)
				j.Steps[i].Env = substituteMap(j.Steps[i].Env, combo)
				j.Steps[i].With = substituteMap(j.Steps[i].With, combo)
			}
			expanded[j.Base] = append(expanded[j.Base], j.Name)
			d.Jobs = append(d.Jobs, &j)
		}
	}
	for _, j := range d.Jobs {
		var needs []string
		for _, n := range j.Needs {
			needs = append(needs, expanded[n]...)
		}
		j.Needs = needs
	}
}

func matrixName(base string, combo map[string]string) string {
	keys := make([]string, 0, len(combo))
	for k := range combo {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + combo[k]
	}
	return base + " (" + strings.Join(parts, ", ") + ")"
}

var matrixRef = regexp.MustCompile(`\$\{\{\s*matrix\.([A-Za-z0-9_-]+)\s*\}\}`)

// substitute replaces ${{ matrix.KEY }} with the combination's value.
func substitute(s string, combo map[string]string) string {
	if !strings.Contains(s, "${{") {
		return s
	}
	return matrixRef.ReplaceAllStringFunc(s, func(m string) string {
		k := matrixRef.FindStringSubmatch(m)[1]
		if v, ok := combo[k]; ok {
			return v
		}
		return m
	})
}

func substituteMap(m map[string]string, combo map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = substitute(v, combo)
	}
	return out
}

// findCycle returns the names along a needs cycle, or nil.
func findCycle(raws []*rawJob) []string {
	byName := map[string]*rawJob{}
	for _, r := range raws {
		byName[r.job.Base] = r
	}
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var visit func(string) []string
	visit = func(n string) []string {
		color[n] = grey
		stack = append(stack, n)
		for _, m := range byName[n].job.Needs {
			switch color[m] {
			case grey:
				i := slices.Index(stack, m)
				return append(slices.Clone(stack[i:]), m)
			case white:
				if c := visit(m); c != nil {
					return c
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return nil
	}
	for _, r := range raws {
		if color[r.job.Base] == white {
			if c := visit(r.job.Base); c != nil {
				return c
			}
		}
	}
	return nil
}

func (p *parseState) job(d *Definition, name string, k, n *yaml.Node) *rawJob {
	what := "job " + strconv.Quote(name)
	f := p.mapping(n, what, jobKeys...)
	if f == nil {
		return nil
	}
	r := &rawJob{job: Job{Name: name, Base: name, Line: k.Line, Timeout: DefaultTimeout}}
	j := &r.job
	r.needsNode = k
	if v := f["stage"]; v != nil {
		j.Stage = p.str(v, what+".stage")
		if !slices.Contains(d.Stages, j.Stage) {
			p.errorf(v, "%s: stage %q is not listed in `stages:`", what, j.Stage)
		}
	} else if len(d.Stages) > 0 {
		j.Stage = d.Stages[0]
	}
	if v := f["needs"]; v != nil {
		j.Needs = p.strings(v, what+".needs")
		r.needsNode = v
	}
	if v := f["if"]; v != nil {
		j.If = p.str(v, what+".if")
		c, err := ParseCondition(j.If)
		if err != nil {
			p.errorf(v, "%s.if: %v", what, err)
		}
		j.cond = c
	}
	if v := f["image"]; v != nil {
		j.Image = p.str(v, what+".image")
		if len(j.Image) > 512 || strings.ContainsAny(j.Image, " \t\n") {
			p.errorf(v, "%s.image %q is not an image reference", what, j.Image)
		}
	}
	if v := f["executor"]; v != nil {
		j.Executor = p.str(v, what+".executor")
		if j.Executor != ExecutorContainer && j.Executor != ExecutorHost {
			p.errorf(v, "%s.executor %q: use container or host", what, j.Executor)
		}
	}
	if j.Executor == ExecutorHost && j.Image != "" {
		p.errorf(n, "%s: the host executor cannot run an image", what)
	}
	if v := f["network"]; v != nil {
		j.Network = p.boolean(v, what+".network")
	}
	j.Env = p.env(f["env"], what+".env")
	if v := f["timeout"]; v != nil {
		if t := p.duration(v, what+".timeout"); t > 0 {
			j.Timeout = t
		}
	}
	if v := f["limits"]; v != nil {
		lf := p.mapping(v, what+".limits", "cpus", "memory", "pids", "disk", "log")
		for key, ln := range lf {
			s := p.str(ln, what+".limits."+key)
			switch key {
			case "cpus":
				c, err := strconv.ParseFloat(s, 64)
				if err != nil || c <= 0 || c > 64 {
					p.errorf(ln, "%s.limits.cpus %q: a number of cores between 0 and 64", what, s)
				}
				j.Limits.CPUs = c
			case "pids":
				c, err := strconv.ParseInt(s, 10, 64)
				if err != nil || c < 8 || c > 65536 {
					p.errorf(ln, "%s.limits.pids %q: between 8 and 65536", what, s)
				}
				j.Limits.Pids = c
			default:
				sz, ok := parseSize(s)
				if !ok || sz < 1<<20 {
					p.errorf(ln, "%s.limits.%s %q: a size of at least 1Mi, like 512Mi or 2Gi", what, key, s)
				}
				switch key {
				case "memory":
					j.Limits.Memory = sz
				case "disk":
					j.Limits.Disk = sz
				case "log":
					j.Limits.Log = sz
				}
			}
		}
	}
	if v := f["secrets"]; v != nil {
		j.Secrets = map[string]string{}
		for k, sv := range p.mapping(v, what+".secrets") {
			if !envName.MatchString(k) {
				p.errorf(sv, "%s.secrets: %q is not a valid environment variable name", what, k)
			}
			ref := p.str(sv, what+".secrets."+k)
			if ref == "" || len(ref) > 256 || strings.ContainsAny(ref, " \t\n") {
				p.errorf(sv, "%s.secrets.%s: %q is not a secret reference", what, k, ref)
			}
			j.Secrets[k] = ref
		}
	}
	if v := f["artifacts"]; v != nil {
		j.Artifacts = p.strings(v, what+".artifacts")
		for _, a := range j.Artifacts {
			if !workspacePath(a) {
				p.errorf(v, "%s.artifacts: %q must be a relative path inside the workspace", what, a)
			}
		}
	}
	if v := f["caches"]; v != nil {
		if v.Kind != yaml.SequenceNode {
			p.errorf(v, "%s.caches must be a list of {key, paths}", what)
		} else {
			for _, c := range v.Content {
				cf := p.mapping(c, what+".caches[]", "key", "paths")
				if cf == nil {
					continue
				}
				var cache Cache
				if kn := cf["key"]; kn != nil {
					cache.Key = p.str(kn, "cache key")
				}
				if cache.Key == "" || !validCacheKey.MatchString(cache.Key) {
					p.errorf(c, "%s: cache key %q: letters, digits, '.', '-' and '_'", what, cache.Key)
				}
				if pn := cf["paths"]; pn != nil {
					cache.Paths = p.strings(pn, "cache paths")
				}
				if len(cache.Paths) == 0 {
					p.errorf(c, "%s: a cache needs paths", what)
				}
				for _, cp := range cache.Paths {
					if !workspacePath(cp) {
						p.errorf(c, "%s: cache path %q must be a relative path inside the workspace", what, cp)
					}
				}
				j.Caches = append(j.Caches, cache)
			}
		}
	}
	if v := f["matrix"]; v != nil {
		r.matrix = p.matrix(v, what)
	}
	sn := f["steps"]
	if sn == nil || sn.Kind != yaml.SequenceNode || len(sn.Content) == 0 {
		at := k
		if sn != nil {
			at = sn
		}
		p.errorf(at, "%s needs `steps:`, a list of at least one step", what)
		return r
	}
	if len(sn.Content) > MaxSteps {
		p.errorf(sn, "%s has %d steps, over the limit of %d", what, len(sn.Content), MaxSteps)
		return r
	}
	for i, s := range sn.Content {
		st, ok := p.step(s, fmt.Sprintf("%s step %d", what, i+1))
		if ok {
			if st.Name == "" {
				st.Name = defaultStepName(st)
			}
			j.Steps = append(j.Steps, st)
		}
	}
	return r
}

var validCacheKey = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

func workspacePath(p string) bool {
	if p == "" || len(p) > 1024 || path.IsAbs(p) || strings.ContainsRune(p, 0) {
		return false
	}
	c := path.Clean(p)
	return c != ".." && !strings.HasPrefix(c, "../")
}

func defaultStepName(st Step) string {
	if st.Type == StepRun {
		line, _, _ := strings.Cut(strings.TrimSpace(st.Run), "\n")
		if len(line) > 60 {
			line = line[:60] + "…"
		}
		return line
	}
	return st.Type
}

func (p *parseState) matrix(n *yaml.Node, what string) []map[string]string {
	f := p.mapping(n, what+".matrix")
	if f == nil {
		return nil
	}
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	combos := []map[string]string{{}}
	for _, k := range keys {
		if !validName.MatchString(k) {
			p.errorf(f[k], "%s.matrix: key %q: use letters, digits, '-' and '_'", what, k)
			return nil
		}
		vals := p.strings(f[k], what+".matrix."+k)
		if len(vals) == 0 {
			p.errorf(f[k], "%s.matrix.%s has no values", what, k)
			return nil
		}
		if len(combos)*len(vals) > MaxMatrix {
			p.errorf(n, "%s.matrix has more than %d combinations", what, MaxMatrix)
			return nil
		}
		var next []map[string]string
		for _, c := range combos {
			for _, v := range vals {
				m := make(map[string]string, len(c)+1)
				for ck, cv := range c {
					m[ck] = cv
				}
				m[k] = v
				next = append(next, m)
			}
		}
		combos = next
	}
	return combos
}

var stepCommon = []string{"name", "env", "if", "timeout", "continue-on-error"}

func (p *parseState) step(n *yaml.Node, what string) (Step, bool) {
	f := p.mapping(n, what)
	if f == nil {
		return Step{}, false
	}
	st := Step{Line: n.Line}
	for k, v := range f {
		switch k {
		case "name":
			st.Name = p.str(v, what+".name")
			if len(st.Name) > 200 {
				p.errorf(v, "%s.name is longer than 200 characters", what)
			}
		case "env":
			st.Env = p.env(v, what+".env")
		case "if":
			st.If = p.str(v, what+".if")
			if _, err := ParseCondition(st.If); err != nil {
				p.errorf(v, "%s.if: %v", what, err)
			}
		case "timeout":
			st.Timeout = p.duration(v, what+".timeout")
		case "continue-on-error":
			st.ContinueOnError = p.boolean(v, what+".continue-on-error")
		case StepRun:
			st.setType(p, v, k, what)
			st.Run = p.str(v, what+".run")
			if strings.TrimSpace(st.Run) == "" {
				p.errorf(v, "%s: run needs a command", what)
			}
			if len(st.Run) > 64<<10 {
				p.errorf(v, "%s: the command is longer than 64 KiB", what)
			}
		default:
			params, builtin := stepParams[k]
			if !builtin {
				p.errorf(v, "%s: unknown step type or key %q (step types: run, scan, build-image, push-image, sign, sbom, deploy; keys: %s)",
					what, k, strings.Join(stepCommon, ", "))
				continue
			}
			st.setType(p, v, k, what)
			st.With = map[string]string{}
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				v = &yaml.Node{Kind: yaml.MappingNode, Line: v.Line}
			}
			allowed := make([]string, len(params))
			for i, prm := range params {
				allowed[i] = strings.TrimSuffix(prm, "!")
			}
			pf := p.mapping(v, what+" ("+k+")", allowed...)
			for pk, pv := range pf {
				if pk == "build-args" {
					for ak, av := range p.env(pv, what+".build-args") {
						st.With["build-arg:"+ak] = av
					}
					continue
				}
				st.With[pk] = p.str(pv, what+"."+pk)
			}
			for _, prm := range params {
				if name, req := strings.CutSuffix(prm, "!"); req && pf != nil && st.With[name] == "" {
					p.errorf(v, "%s: %s needs `%s:`", what, k, name)
				}
			}
			if k == StepScan {
				switch st.With["fail-on"] {
				case "", "critical", "high", "medium", "low", "none":
				default:
					p.errorf(v, "%s: fail-on %q: use critical, high, medium, low or none", what, st.With["fail-on"])
				}
				if pth := st.With["path"]; pth != "" && !workspacePath(pth) {
					p.errorf(v, "%s: path %q must be relative, inside the workspace", what, pth)
				}
			}
			if k == StepDeploy {
				p.deployStep(v, st, what)
			}
		}
	}
	if st.Type == "" && len(p.errs) == 0 {
		p.errorf(n, "%s has no step type: add one of run, scan, build-image, push-image, sign, sbom, deploy", what)
	}
	return st, st.Type != ""
}

func (st *Step) setType(p *parseState, v *yaml.Node, k, what string) {
	if st.Type != "" {
		p.errorf(v, "%s has two step types (%s and %s): one per step", what, st.Type, k)
		return
	}
	st.Type = k
}

// SecretRefs lists every secret reference of the definition.
func (d *Definition) SecretRefs() []string {
	var out []string
	for _, j := range d.Jobs {
		for _, r := range j.Secrets {
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Job returns the job named name, or nil.
func (d *Definition) Job(name string) *Job {
	for _, j := range d.Jobs {
		if j.Name == name {
			return j
		}
	}
	return nil
}

// Condition returns the job's compiled `if`.
func (j *Job) Condition() *Condition {
	if j.cond == nil {
		c, err := ParseCondition(j.If)
		if err != nil {
			return &Condition{src: j.If, root: callNode{"success"}}
		}
		j.cond = c
	}
	return j.cond
}
