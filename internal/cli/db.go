package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/scan/advisory"
)

func (ce *cmdEnv) dbCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "db",
		Short: "Manage the local OSV advisory database that rampart scan matches against",
		Long: `The advisory database holds OSV advisories for matching dependencies.
'rampart db update' downloads OSV's per-ecosystem archives; air-gapped sites
copy those archives (or a directory of OSV JSON files) over and run
'rampart db import PATH'. The database is a file: --db, else
$RAMPART_ADVISORY_DB, else advisories.db under the user's cache directory.`,
	}
	var path string
	cmd.PersistentFlags().StringVar(&path, "db", "", "advisory database file (default $"+advisory.EnvPath+", else the user cache directory)")
	open := func(ctx context.Context) (*advisory.DB, string, error) {
		p := path
		if p == "" {
			var err error
			if p, err = advisory.DefaultPath(ce.Getenv); err != nil {
				return nil, "", err
			}
		}
		db, err := advisory.Open(ctx, p)
		return db, p, err
	}

	importCmd := &cobra.Command{
		Use:   "import PATH",
		Short: "Import OSV advisories from a directory of JSON files, a zip archive or one JSON file",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, _, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			res, err := db.Import(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return ce.printImport(res)
		},
	}

	var source string
	var ecosystems []string
	updateCmd := &cobra.Command{
		Use:   "update",
		Short: "Download and import OSV's per-ecosystem all.zip archives",
		Long: `Download SOURCE/ECOSYSTEM/all.zip for each --ecosystem (default: every
ecosystem rampart scan inventories) and import it. An ecosystem that fails
does not stop the others; the command then exits non-zero naming it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			db, _, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			res, uerr := db.Update(cmd.Context(), source, ecosystems)
			if res != nil {
				if err := ce.printImport(res); err != nil {
					return err
				}
			}
			return uerr
		},
	}
	updateCmd.Flags().StringVar(&source, "source", advisory.DefaultBaseURL, "base URL of the OSV archives")
	updateCmd.Flags().StringArrayVar(&ecosystems, "ecosystem", nil, "OSV ecosystem to download (repeatable; Go, npm, PyPI, Maven, crates.io, RubyGems, Packagist, NuGet, Debian, Alpine, Red Hat, …)")

	statusCmd := &cobra.Command{
		Use:   "status",
		Short: "Show advisory counts per ecosystem and how old the data is",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			db, p, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			st, err := db.Status(cmd.Context())
			if err != nil {
				return err
			}
			out := struct {
				Path string `json:"path"`
				*advisory.Status
				AgeSeconds int64 `json:"age_seconds,omitempty"`
			}{Path: p, Status: st}
			last := st.LastImport
			if st.LastUpdate.After(last) {
				last = st.LastUpdate
			}
			var age time.Duration
			if !last.IsZero() {
				age = time.Since(last).Round(time.Second)
				out.AgeSeconds = int64(age / time.Second)
			}
			return ce.print(out, func(t *tabwriterW) {
				fmt.Fprintf(t, "database:\t%s\n", p)
				fmt.Fprintf(t, "advisories:\t%d (%d withdrawn)\n", st.Advisories, st.Withdrawn)
				if last.IsZero() {
					fmt.Fprintf(t, "last import:\tnever (run 'rampart db update' or 'rampart db import PATH')\n")
				} else {
					fmt.Fprintf(t, "last import:\t%s (%s ago)\n", cell(last), age)
				}
				if !st.LastUpdate.IsZero() {
					fmt.Fprintf(t, "last update:\t%s\n", cell(st.LastUpdate))
				}
				if !st.NewestModified.IsZero() {
					fmt.Fprintf(t, "newest advisory:\t%s\n", cell(st.NewestModified))
				}
				fmt.Fprintln(t)
				row(t, "ECOSYSTEM", "ADVISORIES", "WITHDRAWN", "PACKAGES", "NEWEST", "IMPORTED", "SOURCE")
				for _, e := range st.Ecosystems {
					row(t, e.Name, e.Advisories, e.Withdrawn, e.Packages, e.NewestModified, e.ImportedAt, e.Source)
				}
			})
		},
	}
	cmd.AddCommand(importCmd, updateCmd, statusCmd)
	return cmd
}

// printImport shows what an import or update changed; notes about files
// that could not be imported go to stderr in table mode.
func (ce *cmdEnv) printImport(res *advisory.ImportResult) error {
	if ce.output != "json" {
		for _, n := range res.Notes {
			fmt.Fprintf(ce.Stderr, "rampart: skipped %s: %s\n", cell(n.Path), cell(n.Message))
		}
	}
	return ce.print(res, func(t *tabwriterW) {
		fmt.Fprintf(t, "read %d files: %d added, %d updated, %d unchanged, %d skipped\n",
			res.Files, res.Added, res.Updated, res.Unchanged, len(res.Notes))
		if len(res.Ecosystems) > 0 {
			fmt.Fprintf(t, "ecosystems: %s\n", cell(res.Ecosystems))
		}
	})
}
