package exception

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"
)

// MaxFileSize caps a file of exceptions.
const MaxFileSize = 1 << 20

// Lists of exceptions in YAML files: the key that holds them, and the
// noun their messages use.
const (
	// KeySuppressions is the list in .rampart/ignore.yaml.
	KeySuppressions = "suppressions"
	// KeyExceptions is the list in a policy bundle's exceptions.yaml.
	KeyExceptions = "exceptions"
)

type suppressionsYAML struct {
	List []Exception `yaml:"suppressions"`
}

type exceptionsYAML struct {
	List []Exception `yaml:"exceptions"`
}

// Parse reads a YAML file holding a list of exceptions under key
// (KeySuppressions or KeyExceptions). Unknown fields, entries without a
// reason or without an id, paths or fingerprint, and bad globs or dates
// are errors naming name and the line. Each exception gets name as its
// Source and its line.
func Parse(name string, r io.Reader, key string) ([]Exception, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, MaxFileSize)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var list []Exception
	noun := "exception"
	switch key {
	case KeySuppressions:
		var f suppressionsYAML
		err, list, noun = dec.Decode(&f), f.List, "suppression"
	case KeyExceptions:
		var f exceptionsYAML
		err, list = dec.Decode(&f), f.List
	default:
		return nil, fmt.Errorf("exception: unknown list key %q", key)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	lines := entryLines(&root, key)
	out := make([]Exception, 0, len(list))
	for i, e := range list {
		if i < len(lines) {
			e.Line = lines[i]
		}
		e.Source = name
		e.Normalize()
		if err := e.Validate(noun); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, e.Line, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// entryLines returns the line of each item of the sequence under key.
func entryLines(root *yaml.Node, key string) []int {
	if root == nil || len(root.Content) == 0 {
		return nil
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return nil
	}
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
