package cli

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func (ce *cmdEnv) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use: "version", Short: "Print the version", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := struct {
				Version string `json:"version"`
			}{"(devel)"}
			if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
				v.Version = bi.Main.Version
			}
			return ce.print(v, func(t *tabwriterW) { fmt.Fprintln(t, "rampart", v.Version) })
		},
	}
}
