package main

import (
	"embed"
	"fmt"

	"github.com/urfave/cli/v2"
)

// completionScripts are urfave/cli's own completion scripts with the program name filled in.
//
//go:embed completion/cairn.bash completion/cairn.zsh
var completionScripts embed.FS

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script for bash or zsh",
		ArgsUsage: "bash|zsh",
		Description: `Completes commands and flags.

Examples:
   source <(cairn completion bash)                 # now; add it to ~/.bashrc to keep it
   cairn completion zsh > "${fpath[1]}/_cairn"     # zsh`,
		Action: func(c *cli.Context) error {
			shell := c.Args().First()
			if shell != "bash" && shell != "zsh" || c.NArg() != 1 {
				return cli.Exit("name the shell: cairn completion bash, or cairn completion zsh", 2)
			}
			script, err := completionScripts.ReadFile("completion/cairn." + shell)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(c.App.Writer, string(script))
			return err
		},
	}
}
