package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Config is a bundle's policy.yaml: settings the policies read and the
// modes they run in.
//
//	settings:                    # data.rampart.config.settings in Rego
//	  vulnerability_threshold: critical
//	  allowed_registries: [registry.example.com]
//	modes:                       # the last rule that matches wins
//	  - policy: RMP-ADM-*        # a policy id or glob
//	    environment: prod*       # optional: only decisions for these environments
//	    mode: enforce            # enforce, warn or audit
//
// Settings of later bundles replace the built-in library's key by key;
// their mode rules come after the library's.
type Config struct {
	Settings map[string]any `yaml:"settings"`
	Modes    []ModeRule     `yaml:"modes"`
}

// ModeRule sets the mode of the policies it matches.
type ModeRule struct {
	// Policy is a policy id or glob.
	Policy string `yaml:"policy" json:"policy"`
	// Environment, when set, limits the rule to decisions for matching
	// environments (glob).
	Environment string `yaml:"environment" json:"environment,omitempty"`
	Mode        Mode   `yaml:"mode" json:"mode"`
	// Source is FILE:LINE of the rule.
	Source string `yaml:"-" json:"source"`
}

// matches reports whether the rule covers policy id in environment env.
func (r ModeRule) matches(id, env string) bool {
	if ok, _ := path.Match(r.Policy, id); !ok {
		return false
	}
	if r.Environment == "" {
		return true
	}
	ok, _ := path.Match(r.Environment, env)
	return ok && env != ""
}

// parseConfig reads a policy.yaml.
func parseConfig(name string, data []byte) (Config, error) {
	var cfg Config
	if len(bytes.TrimSpace(data)) == 0 {
		return cfg, nil
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return cfg, fmt.Errorf("%s: %v", name, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, fmt.Errorf("%s: %v", name, err)
	}
	lines := seqLines(&root, "modes")
	for i := range cfg.Modes {
		r := &cfg.Modes[i]
		line := 0
		if i < len(lines) {
			line = lines[i]
		}
		r.Source = fmt.Sprintf("%s:%d", name, line)
		r.Policy, r.Environment = strings.TrimSpace(r.Policy), strings.TrimSpace(r.Environment)
		m, err := ParseMode(string(r.Mode))
		if err != nil {
			return cfg, fmt.Errorf("%s: mode %q: want enforce, warn or audit", r.Source, r.Mode)
		}
		r.Mode = m
		if r.Policy == "" {
			return cfg, fmt.Errorf("%s: a mode rule needs a policy (an id or a glob such as RMP-ADM-*)", r.Source)
		}
		for _, g := range []string{r.Policy, r.Environment} {
			if _, err := path.Match(g, ""); err != nil {
				return cfg, fmt.Errorf("%s: invalid glob %q", r.Source, g)
			}
		}
	}
	// Settings become Rego data: JSON-compatible values only.
	if err := jsonCompatible(cfg.Settings); err != nil {
		return cfg, fmt.Errorf("%s: settings: %v", name, err)
	}
	return cfg, nil
}

// jsonCompatible checks that v holds only what JSON can (YAML maps with
// non-string keys cannot become Rego objects of strings).
func jsonCompatible(v any) error {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if err := jsonCompatible(e); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
	case []any:
		for i, e := range x {
			if err := jsonCompatible(e); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
	case nil, string, bool, int, int64, uint64, float64:
	default:
		return fmt.Errorf("unsupported value %v (%T): use strings, numbers, booleans, lists and maps with string keys", x, x)
	}
	return nil
}

// seqLines returns the line of each item of the sequence under key.
func seqLines(root *yaml.Node, key string) []int {
	if root == nil || len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return nil
	}
	doc := root.Content[0]
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value == key && doc.Content[i+1].Kind == yaml.SequenceNode {
			var out []int
			for _, item := range doc.Content[i+1].Content {
				out = append(out, item.Line)
			}
			return out
		}
	}
	return nil
}

// mergeSettings overlays later settings on earlier ones, key by key.
func mergeSettings(base, over map[string]any) map[string]any {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]any{}
	}
	maps.Copy(out, over)
	return out
}
