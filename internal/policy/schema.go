package policy

import (
	"bytes"
	"embed"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/rampartsec/rampart/internal/apperr"
)

//go:embed schemas/*.json
var schemaFS embed.FS

const schemaBase = "https://rampart.dev/schemas/policy/"

// schemas holds every gate's compiled input schema.
var schemas = sync.OnceValues(func() (map[Gate]*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	entries, err := schemaFS.ReadDir("schemas")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		b, err := schemaFS.ReadFile("schemas/" + e.Name())
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", e.Name(), err)
		}
		if err := c.AddResource(schemaBase+e.Name(), doc); err != nil {
			return nil, fmt.Errorf("schema %s: %w", e.Name(), err)
		}
	}
	out := map[Gate]*jsonschema.Schema{}
	for _, g := range Gates() {
		s, err := c.Compile(schemaBase + string(g) + ".json")
		if err != nil {
			return nil, fmt.Errorf("schema of gate %s: %w", g, err)
		}
		out[g] = s
	}
	return out, nil
})

// InputSchema returns the JSON Schema of a gate's input document.
func InputSchema(g Gate) ([]byte, error) {
	return schemaFS.ReadFile("schemas/" + string(g) + ".json")
}

var printer = message.NewPrinter(language.English)

// validateInput checks a decoded input document (numbers as json.Number)
// against its gate's schema; the error names every place at fault, as
// JSON pointers into the input.
func validateInput(g Gate, v any) error {
	all, err := schemas()
	if err != nil {
		return err
	}
	err = all[g].Validate(v)
	if err == nil {
		return nil
	}
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return apperr.Wrap(err, apperr.Invalid, "the input document does not fit the "+string(g)+" gate")
	}
	var leaves []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			at := "/" + strings.Join(e.InstanceLocation, "/")
			leaves = append(leaves, fmt.Sprintf("at %s: %s", at, e.ErrorKind.LocalizedString(printer)))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	slices.Sort(leaves)
	leaves = slices.Compact(leaves)
	if len(leaves) > 10 {
		leaves = append(leaves[:10], fmt.Sprintf("… and %d more", len(leaves)-10))
	}
	return &apperr.Error{Kind: apperr.Invalid, Field: "input",
		Msg: fmt.Sprintf("the input document does not fit the %s gate (see docs/policy.md): %s", g, strings.Join(leaves, "; "))}
}
