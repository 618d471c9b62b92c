package cli

import "github.com/spf13/cobra"

// strictGroups makes every command that only groups subcommands (org,
// org member, completion, …) refuse an unknown subcommand with a usage
// error. Cobra checks unknown commands only at the root: `rampart org
// frobnicate` would otherwise print help and exit 0, and a script with a
// typo would carry on as if it had worked. Bare `rampart org` still shows
// the help.
func strictGroups(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.HasSubCommands() && !sub.Runnable() {
				sub.Args = func(cmd *cobra.Command, args []string) error {
					if len(args) > 0 {
						return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
					}
					return nil
				}
				sub.RunE = func(cmd *cobra.Command, args []string) error { return cmd.Help() }
			}
			walk(sub)
		}
	}
	walk(root)
}
