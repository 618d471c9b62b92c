package cli

import "strings"

func splitPair(s, form string) (string, string, error) {
	a, b, ok := strings.Cut(s, "/")
	if !ok || a == "" || b == "" || strings.Contains(b, "/") {
		return "", "", usagef("%q is not of the form %s", s, form)
	}
	return a, b, nil
}

func cutPrefix(s, prefix string) (string, bool) { return strings.CutPrefix(s, prefix) }
