package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/scm"
)

func (ce *cmdEnv) sshKeyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "ssh-key", Short: "Manage your SSH keys (git over SSH, signed commits)"}
	var name string
	add := &cobra.Command{
		Use: "add FILE|-", Short: "Register a public key (a .pub file, or - for standard input)", Args: cobra.ExactArgs(1),
		Example: "  rampart ssh-key add ~/.ssh/id_ed25519.pub --name laptop",
		RunE: func(cmd *cobra.Command, args []string) error {
			var rd io.Reader = ce.Stdin
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return apperr.Wrap(err, apperr.Invalid, "read "+args[0])
				}
				defer f.Close()
				rd = f
			}
			b, err := io.ReadAll(io.LimitReader(rd, 17<<10))
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var k scm.SSHKeyJSON
			if err := c.do(cmd.Context(), "POST", httpapi.Prefix+"/user/ssh-keys", scm.SSHKeyRequest{Name: name, Key: string(b)}, &k); err != nil {
				return err
			}
			return ce.print(k, func(t *tabwriterW) { row(t, "Added key", k.ID, k.Name, k.Fingerprint) })
		},
	}
	add.Flags().StringVar(&name, "name", "", "a name for the key (default: its comment)")
	list := &cobra.Command{
		Use: "list", Short: "List your SSH keys", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var ks []scm.SSHKeyJSON
			if err := c.do(cmd.Context(), "GET", httpapi.Prefix+"/user/ssh-keys", nil, &ks); err != nil {
				return err
			}
			return ce.print(ks, func(t *tabwriterW) {
				row(t, "ID", "NAME", "TYPE", "FINGERPRINT", "ADDED", "LAST USED")
				for _, k := range ks {
					row(t, k.ID, k.Name, k.Type, k.Fingerprint, k.CreatedAt, k.LastUsedAt)
				}
			})
		},
	}
	rm := &cobra.Command{
		Use: "rm ID", Aliases: []string{"remove"}, Short: "Remove one of your SSH keys", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), "DELETE", httpapi.Prefix+"/user/ssh-keys/"+esc(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(ce.Stderr, "Removed SSH key %s.\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(add, list, rm)
	return cmd
}
