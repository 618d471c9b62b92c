package cli

import (
	"github.com/spf13/cobra"
)

// deviceLogin signs in through the OAuth device authorization grant.
func (ce *cmdEnv) deviceLogin(cmd *cobra.Command, c *client, entry *serverEntry) error {
	return usagef("pass --token or --username with --password-stdin")
}
