package secrets

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/rampartsec/rampart/internal/scan/report"
)

// maxConfigSize bounds a gitleaks configuration file.
const maxConfigSize = 16 << 20

// The shape of a gitleaks (v8) configuration file.
type glConfig struct {
	Title       string        `toml:"title"`
	Description string        `toml:"description"`
	MinVersion  string        `toml:"minVersion"`
	Extend      glExtend      `toml:"extend"`
	Rules       []glRule      `toml:"rules"`
	Allowlist   *glAllowlist  `toml:"allowlist"`
	Allowlists  []glAllowlist `toml:"allowlists"`
}

type glExtend struct {
	UseDefault    bool     `toml:"useDefault"`
	Path          string   `toml:"path"`
	URL           string   `toml:"url"`
	DisabledRules []string `toml:"disabledRules"`
}

type glRule struct {
	ID          string        `toml:"id"`
	Description string        `toml:"description"`
	Regex       string        `toml:"regex"`
	SecretGroup int           `toml:"secretGroup"`
	Entropy     float64       `toml:"entropy"`
	Keywords    []string      `toml:"keywords"`
	Path        string        `toml:"path"`
	Tags        []string      `toml:"tags"`
	Allowlist   *glAllowlist  `toml:"allowlist"`
	Allowlists  []glAllowlist `toml:"allowlists"`
	Required    []any         `toml:"required"`
	SkipReport  bool          `toml:"skipReport"`
}

type glAllowlist struct {
	Description string   `toml:"description"`
	Condition   string   `toml:"condition"`
	Commits     []string `toml:"commits"`
	Paths       []string `toml:"paths"`
	RegexTarget string   `toml:"regexTarget"`
	Regexes     []string `toml:"regexes"`
	StopWords   []string `toml:"stopwords"`
	TargetRules []string `toml:"targetRules"`
}

// Known keys, lower-cased (gitleaks reads them case-insensitively).
var (
	glTopKeys       = keySet("title", "description", "minVersion", "extend", "rules", "allowlist", "allowlists")
	glExtendKeys    = keySet("useDefault", "path", "url", "disabledRules")
	glRuleKeys      = keySet("id", "description", "regex", "secretGroup", "entropy", "keywords", "path", "tags", "allowlist", "allowlists", "required", "skipReport")
	glAllowlistKeys = keySet("description", "condition", "commits", "paths", "regexTarget", "regexes", "stopwords")
)

func keySet(keys ...string) map[string]bool {
	m := map[string]bool{}
	for _, k := range keys {
		m[strings.ToLower(k)] = true
	}
	return m
}

// ParseGitleaksTOML reads a gitleaks configuration file (the TOML of
// gitleaks v8: [[rules]] with id, description, regex, secretGroup,
// entropy, keywords, path, tags and allowlists, global [[allowlists]]
// with targetRules, and [extend]) and returns its rules. With
// `[extend] useDefault = true` the result is the file's rules plus
// Rampart's defaults (a file's rule replaces a default of the same id;
// disabledRules removes defaults). Global allowlists are attached to
// every rule they target.
//
// Loaded rules keep gitleaks' semantics: their regex runs over the whole
// content when one of their keywords appears anywhere in it
// (ScopeContent). Their severity is the first tag naming a severity
// ("critical", "high", …), or high. Rules whose id starts with "generic"
// are catch-alls (Rule.Generic).
//
// Unknown fields, invalid regexes and unsupported features (composite
// rules, extend.path) are errors naming the rule.
func ParseGitleaksTOML(r io.Reader) ([]Rule, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("read gitleaks config: %w", err)
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("gitleaks config: larger than %d MiB", maxConfigSize>>20)
	}
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return nil, fmt.Errorf("gitleaks config: %w", err)
	}
	if err := checkKeys(raw); err != nil {
		return nil, fmt.Errorf("gitleaks config: %w", err)
	}
	var c glConfig
	if _, err := toml.Decode(string(data), &c); err != nil {
		return nil, fmt.Errorf("gitleaks config: %w", err)
	}
	rules, err := c.translate()
	if err != nil {
		return nil, fmt.Errorf("gitleaks config: %w", err)
	}
	return rules, nil
}

// checkKeys refuses keys gitleaks does not know, naming the rule.
func checkKeys(raw map[string]any) error {
	if err := unknown(raw, glTopKeys, "top level"); err != nil {
		return err
	}
	if ext, ok := raw["extend"].(map[string]any); ok {
		if err := unknown(ext, glExtendKeys, "[extend]"); err != nil {
			return err
		}
	}
	checkAllowlists := func(v any, where string, global bool) error {
		var lists []map[string]any
		switch v := v.(type) {
		case map[string]any:
			lists = append(lists, v)
		case []map[string]any:
			lists = v
		case []any:
			for _, x := range v {
				if m, ok := x.(map[string]any); ok {
					lists = append(lists, m)
				}
			}
		}
		known := glAllowlistKeys
		if global {
			known = keySet("description", "condition", "commits", "paths", "regexTarget", "regexes", "stopwords", "targetRules")
		}
		for _, l := range lists {
			if err := unknown(l, known, where); err != nil {
				return err
			}
		}
		return nil
	}
	for k, v := range raw {
		switch strings.ToLower(k) {
		case "allowlist", "allowlists":
			if err := checkAllowlists(v, "global allowlist", true); err != nil {
				return err
			}
		}
	}
	var rules []map[string]any
	switch v := raw["rules"].(type) {
	case []map[string]any:
		rules = v
	case []any:
		for _, x := range v {
			if m, ok := x.(map[string]any); ok {
				rules = append(rules, m)
			}
		}
	}
	for i, r := range rules {
		name := fmt.Sprintf("rule %d", i+1)
		if id, ok := r["id"].(string); ok && id != "" {
			name = fmt.Sprintf("rule %q", id)
		}
		if err := unknown(r, glRuleKeys, name); err != nil {
			return err
		}
		for k, v := range r {
			switch strings.ToLower(k) {
			case "allowlist", "allowlists":
				if err := checkAllowlists(v, name+" allowlist", false); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func unknown(m map[string]any, known map[string]bool, where string) error {
	var bad []string
	for k := range m {
		if !known[strings.ToLower(k)] {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	return fmt.Errorf("%s: unknown field %q", where, bad[0])
}

func (c *glConfig) translate() ([]Rule, error) {
	if c.Extend.Path != "" || c.Extend.URL != "" {
		return nil, errors.New("[extend] path and url are not supported: merge the files into one, or use useDefault")
	}
	var rules []Rule
	index := map[string]int{}
	for i, gr := range c.Rules {
		name := fmt.Sprintf("rule %d", i+1)
		if gr.ID != "" {
			name = fmt.Sprintf("rule %q", gr.ID)
		}
		if strings.TrimSpace(gr.ID) == "" {
			return nil, fmt.Errorf("%s: missing id", name)
		}
		if _, dup := index[gr.ID]; dup {
			return nil, fmt.Errorf("%s: defined twice", name)
		}
		if len(gr.Required) > 0 {
			return nil, fmt.Errorf("%s: composite rules ([[rules.required]]) are not supported", name)
		}
		r, err := gr.translate()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if gr.SkipReport {
			continue // only meaningful as part of a composite rule
		}
		index[gr.ID] = len(rules)
		rules = append(rules, r)
	}
	if c.Extend.UseDefault {
		disabled := map[string]bool{}
		for _, id := range c.Extend.DisabledRules {
			disabled[id] = true
		}
		var merged []Rule
		for _, d := range DefaultRules() {
			if disabled[d.ID] {
				continue
			}
			if _, overridden := index[d.ID]; overridden {
				continue
			}
			merged = append(merged, d)
		}
		rules = append(merged, rules...)
	} else if len(c.Extend.DisabledRules) > 0 {
		return nil, errors.New("[extend] disabledRules needs useDefault = true")
	}

	if c.Allowlist != nil && len(c.Allowlists) > 0 {
		return nil, errors.New("[allowlist] is deprecated and cannot be used alongside [[allowlists]]")
	}
	globals := c.Allowlists
	if c.Allowlist != nil {
		globals = append(globals, *c.Allowlist)
	}
	for i, ga := range globals {
		a, err := ga.translate()
		if err != nil {
			return nil, fmt.Errorf("global allowlist %d: %w", i+1, err)
		}
		if len(ga.TargetRules) == 0 {
			for j := range rules {
				rules[j].Allowlists = append(slices.Clone(rules[j].Allowlists), a)
			}
			continue
		}
		for _, id := range ga.TargetRules {
			j := slices.IndexFunc(rules, func(r Rule) bool { return r.ID == id })
			if j < 0 {
				return nil, fmt.Errorf("global allowlist %d: target rule %q does not exist", i+1, id)
			}
			rules[j].Allowlists = append(slices.Clone(rules[j].Allowlists), a)
		}
	}
	return rules, nil
}

func (gr *glRule) translate() (Rule, error) {
	r := Rule{
		ID:          gr.ID,
		Description: gr.Description,
		SecretGroup: gr.SecretGroup,
		Entropy:     gr.Entropy,
		Severity:    report.SeverityHigh,
		Scope:       ScopeContent,
		Generic:     strings.HasPrefix(gr.ID, "generic"),
	}
	if r.Description == "" {
		r.Description = gr.ID
	}
	for _, t := range gr.Tags {
		if s, err := report.ParseSeverity(t); err == nil && s != report.SeverityUnknown {
			r.Severity = s
			break
		}
	}
	var err error
	if gr.Regex != "" {
		if r.Regex, err = regexp.Compile(gr.Regex); err != nil {
			return Rule{}, fmt.Errorf("regex: %w", err)
		}
	}
	if gr.Path != "" {
		if r.Path, err = regexp.Compile(gr.Path); err != nil {
			return Rule{}, fmt.Errorf("path: %w", err)
		}
	}
	if r.Regex == nil && r.Path == nil {
		return Rule{}, errors.New("needs a regex or a path")
	}
	if r.Regex != nil && gr.SecretGroup > r.Regex.NumSubexp() {
		return Rule{}, fmt.Errorf("secretGroup %d but the regex has %d groups", gr.SecretGroup, r.Regex.NumSubexp())
	}
	if gr.SecretGroup < 0 || gr.Entropy < 0 {
		return Rule{}, errors.New("secretGroup and entropy must not be negative")
	}
	for _, k := range gr.Keywords {
		if k = strings.ToLower(k); k != "" {
			r.Keywords = append(r.Keywords, k)
		}
	}
	if gr.Allowlist != nil && len(gr.Allowlists) > 0 {
		return Rule{}, errors.New("[rules.allowlist] is deprecated and cannot be used alongside [[rules.allowlists]]")
	}
	lists := gr.Allowlists
	if gr.Allowlist != nil {
		lists = append(lists, *gr.Allowlist)
	}
	for i, ga := range lists {
		a, err := ga.translate()
		if err != nil {
			return Rule{}, fmt.Errorf("allowlist %d: %w", i+1, err)
		}
		r.Allowlists = append(r.Allowlists, a)
	}
	return r, nil
}

func (ga *glAllowlist) translate() (Allowlist, error) {
	a := Allowlist{Description: ga.Description, Commits: ga.Commits}
	switch strings.ToUpper(strings.TrimSpace(ga.Condition)) {
	case "", "OR", "||":
	case "AND", "&&":
		a.MatchAll = true
	default:
		return Allowlist{}, fmt.Errorf("unknown condition %q (want AND or OR)", ga.Condition)
	}
	switch strings.ToLower(ga.RegexTarget) {
	case "", "secret":
	case "match":
		a.RegexTarget = TargetMatch
	case "line":
		a.RegexTarget = TargetLine
	default:
		return Allowlist{}, fmt.Errorf("unknown regexTarget %q (want secret, match or line)", ga.RegexTarget)
	}
	for _, p := range ga.Paths {
		re, err := regexp.Compile(p)
		if err != nil {
			return Allowlist{}, fmt.Errorf("path %q: %w", p, err)
		}
		a.Paths = append(a.Paths, re)
	}
	for _, p := range ga.Regexes {
		re, err := regexp.Compile(p)
		if err != nil {
			return Allowlist{}, fmt.Errorf("regex %q: %w", p, err)
		}
		a.Regexes = append(a.Regexes, re)
	}
	for _, w := range ga.StopWords {
		if w != "" {
			a.StopWords = append(a.StopWords, strings.ToLower(w))
		}
	}
	if a.empty() {
		return Allowlist{}, errors.New("needs at least one of commits, paths, regexes or stopwords")
	}
	return a, nil
}
