package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
)

// print writes v as JSON with --output json, else calls table to write a
// human table.
// tabwriterW is the table writer commands fill.
type tabwriterW = tabwriter.Writer

func (ce *cmdEnv) print(v any, table func(t *tabwriter.Writer)) error {
	if ce.output == "json" {
		enc := json.NewEncoder(ce.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(ce.Stdout, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

func row(t *tabwriter.Writer, cols ...any) {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = cell(c)
	}
	fmt.Fprintln(t, strings.Join(parts, "\t"))
}

func cell(c any) string {
	switch v := c.(type) {
	case time.Time:
		if v.IsZero() {
			return "-"
		}
		return v.Local().Format("2006-01-02 15:04")
	case *time.Time:
		if v == nil {
			return "-"
		}
		return cell(*v)
	case []string:
		if len(v) == 0 {
			return "-"
		}
		return strings.Join(v, ",")
	case string:
		if v == "" {
			return "-"
		}
		// Never let a value break the table or the terminal.
		return strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return '?'
			}
			return r
		}, v)
	}
	return fmt.Sprint(c)
}
