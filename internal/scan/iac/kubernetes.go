package iac

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Limits on one YAML file once aliases are expanded: a "billion laughs"
// file of nested aliases is a few hundred bytes that would expand to
// gigabytes.
const (
	maxYAMLNodes = 200_000
	maxYAMLDepth = 200
)

var errYAMLBudget = fmt.Errorf("more than %d values once aliases are expanded (an alias bomb?)", maxYAMLNodes)

// kubernetesInput turns a YAML file into the input document described in
// doc.go. Documents without apiVersion and kind are left out; a file with
// none returns a nil document. A syntax error in a later document keeps
// the earlier ones and is returned with them.
func kubernetesInput(path string, data []byte) (map[string]any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	conv := &yamlConverter{lastLine: lineCount(data)}
	docs := []any{}
	var parseErr error
	for i := 0; ; i++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			parseErr = yamlError(err, i)
			break
		}
		if n.Kind != yaml.DocumentNode || len(n.Content) == 0 {
			continue
		}
		root := n.Content[0]
		objs, err := conv.objects(root)
		if err != nil {
			return nil, fmt.Errorf("document %d (line %d): %w", i+1, root.Line, err)
		}
		for _, o := range objs {
			o["index"] = len(docs)
			docs = append(docs, o)
		}
	}
	if len(docs) == 0 {
		return nil, parseErr
	}
	return map[string]any{
		"kind":      "kubernetes",
		"path":      path,
		"documents": docs,
	}, parseErr
}

// yamlError words a decoder error with the document it stopped at.
func yamlError(err error, doc int) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if doc > 0 {
		return fmt.Errorf("%s (only the %d document(s) before it were scanned)", msg, doc)
	}
	return errors.New(msg)
}

// yamlConverter turns yaml.v3 nodes into JSON-like values, counting every
// value it produces against maxYAMLNodes across the whole file.
type yamlConverter struct {
	nodes    int
	lastLine int
}

// line is the line of n, within the file: the parser places an empty
// value at the end of a file on the line after the last.
func (c *yamlConverter) line(n *yaml.Node) int {
	return min(max(n.Line, 1), c.lastLine)
}

// spend counts one step of the conversion against the file's budget.
func (c *yamlConverter) spend() error {
	if c.nodes++; c.nodes > maxYAMLNodes {
		return errYAMLBudget
	}
	return nil
}

// objects returns the Kubernetes objects of one YAML document: the
// document itself, or the items of a List.
func (c *yamlConverter) objects(root *yaml.Node) ([]map[string]any, error) {
	if err := c.spend(); err != nil {
		return nil, err
	}
	root = resolveAlias(root)
	if root == nil || root.Kind != yaml.MappingNode {
		return nil, nil
	}
	apiVersion, kind := scalarField(root, "apiVersion"), scalarField(root, "kind")
	if apiVersion == "" || kind == "" {
		return nil, nil
	}
	if kind == "List" || strings.HasSuffix(kind, "List") && fieldNode(root, "items") != nil {
		items := resolveAlias(fieldNode(root, "items"))
		var out []map[string]any
		if items == nil || items.Kind != yaml.SequenceNode {
			return nil, nil
		}
		for _, it := range items.Content {
			objs, err := c.objects(it)
			if err != nil {
				return nil, err
			}
			out = append(out, objs...)
		}
		return out, nil
	}
	lines := map[string]any{}
	obj, end, err := c.value(root, "", lines, 0)
	if err != nil {
		return nil, err
	}
	m, _ := obj.(map[string]any)
	return []map[string]any{{
		"line":     c.line(root),
		"end_line": end,
		"resource": resourceName(m),
		"object":   m,
		"lines":    lines,
	}}, nil
}

// resourceName identifies an object as Kind/namespace/name, leaving out
// what is missing.
func resourceName(obj map[string]any) string {
	kind, _ := obj["kind"].(string)
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	if name == "" {
		name, _ = meta["generateName"].(string)
	}
	parts := []string{kind}
	if ns, _ := meta["namespace"].(string); ns != "" {
		parts = append(parts, ns)
	}
	return strings.Join(append(parts, name), "/")
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxYAMLDepth; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.AliasNode {
		return nil
	}
	return n
}

func fieldNode(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Kind == yaml.ScalarNode && m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func scalarField(m *yaml.Node, key string) string {
	n := resolveAlias(fieldNode(m, key))
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

// value converts n, recording in lines the line of n under the JSON
// pointer ptr and of everything below it. It returns the last line the
// value covers.
func (c *yamlConverter) value(n *yaml.Node, ptr string, lines map[string]any, depth int) (any, int, error) {
	if depth > maxYAMLDepth {
		return nil, 0, fmt.Errorf("line %d: values nested deeper than %d levels", n.Line, maxYAMLDepth)
	}
	if err := c.spend(); err != nil {
		return nil, 0, err
	}
	if _, seen := lines[ptr]; !seen {
		lines[ptr] = c.line(n)
	}
	end := c.line(n)
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil, end, nil
		}
		v, _, err := c.value(n.Alias, ptr, lines, depth+1)
		return v, end, err
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, end, nil
		}
		return c.value(n.Content[0], ptr, lines, depth+1)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for i, item := range n.Content {
			v, e, err := c.value(item, ptr+"/"+strconv.Itoa(i), lines, depth+1)
			if err != nil {
				return nil, 0, err
			}
			out = append(out, v)
			end = max(end, e)
		}
		return out, end, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		if err := c.mapping(n, ptr, lines, depth, out, &end); err != nil {
			return nil, 0, err
		}
		return out, end, nil
	case yaml.ScalarNode:
		return scalarValue(n), end, nil
	}
	return nil, end, nil
}

// mapping adds the entries of mapping n to out. Merge keys (<<) add the
// entries of the mappings they name that out does not set itself.
func (c *yamlConverter) mapping(n *yaml.Node, ptr string, lines map[string]any, depth int, out map[string]any, end *int) error {
	if depth > maxYAMLDepth {
		return fmt.Errorf("line %d: merge keys nested deeper than %d levels", n.Line, maxYAMLDepth)
	}
	if err := c.spend(); err != nil {
		return err
	}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			merges = append(merges, v)
			continue
		}
		key, ok := mappingKey(k)
		if !ok {
			continue
		}
		childPtr := ptr + "/" + escapePointer(key)
		lines[childPtr] = c.line(k)
		x, e, err := c.value(v, childPtr, lines, depth+1)
		if err != nil {
			return err
		}
		out[key] = x
		*end = max(*end, e)
	}
	for _, m := range merges {
		m = resolveAlias(m)
		if m == nil {
			continue
		}
		srcs := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			srcs = m.Content
		}
		for _, src := range srcs {
			src = resolveAlias(src)
			if src == nil || src.Kind != yaml.MappingNode {
				continue
			}
			merged := map[string]any{}
			if err := c.mapping(src, ptr, map[string]any{}, depth+1, merged, new(int)); err != nil {
				return err
			}
			for k, v := range merged {
				if _, set := out[k]; !set {
					out[k] = v
				}
			}
		}
	}
	return nil
}

func mappingKey(k *yaml.Node) (string, bool) {
	k = resolveAlias(k)
	if k == nil || k.Kind != yaml.ScalarNode {
		return "", false
	}
	return k.Value, true
}

// yaml11Bools are the plain scalars that Kubernetes' YAML reader (YAML
// 1.1) takes as booleans and YAML 1.2 as strings: "privileged: yes" is
// privileged to the cluster.
var yaml11Bools = map[string]bool{
	"y": true, "Y": true, "yes": true, "Yes": true, "YES": true, "on": true, "On": true, "ON": true,
	"n": false, "N": false, "no": false, "No": false, "NO": false, "off": false, "Off": false, "OFF": false,
}

// scalarValue resolves a scalar the way Kubernetes reads it.
func scalarValue(n *yaml.Node) any {
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool":
		var b bool
		if n.Decode(&b) == nil {
			return b
		}
	case "!!int":
		var i int64
		if n.Decode(&i) == nil {
			return int(i)
		}
		var u uint64
		if n.Decode(&u) == nil {
			return json.Number(strconv.FormatUint(u, 10))
		}
	case "!!float":
		var f float64
		if n.Decode(&f) == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
		}
	case "!!str":
		if n.Style == 0 {
			if b, ok := yaml11Bools[n.Value]; ok {
				return b
			}
		}
	}
	return n.Value
}

// escapePointer escapes one JSON pointer (RFC 6901) segment.
func escapePointer(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}
