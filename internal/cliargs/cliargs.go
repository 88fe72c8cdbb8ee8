// Package cliargs reads the arguments of urfave/cli commands the way people type them: flags
// after the arguments as well as before (`cairn call query --url …`), which urfave/cli stops
// reading at the first argument.
package cliargs

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// ErrHelp is Interspersed's answer to a --help after the arguments.
var ErrHelp = errors.New("help requested")

// Interspersed returns the command's arguments and applies the flags found among them. A lone
// "-" is an argument; "--" ends the flags.
func Interspersed(c *cli.Context) ([]string, error) {
	var pos []string
	args := c.Args().Slice()
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(pos, args[i+1:]...), nil
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name == "help" || name == "h" {
			return nil, ErrHelp
		}
		var f cli.Flag
		for _, cf := range c.Command.Flags {
			if slices.Contains(cf.Names(), name) {
				f = cf
				break
			}
		}
		if f == nil {
			return nil, fmt.Errorf("flag provided but not defined: %s", a)
		}
		if !hasValue {
			if _, ok := f.(*cli.BoolFlag); ok {
				value = "true"
			} else if i+1 < len(args) {
				i++
				value = args[i]
			} else {
				return nil, fmt.Errorf("flag needs an argument: %s", a)
			}
		}
		if err := c.Set(name, value); err != nil {
			return nil, fmt.Errorf("invalid value %q for flag %s: %v", value, a, err)
		}
	}
	return pos, nil
}

// Positional is Interspersed with usage errors (exit code 2) that point at the command's help;
// for --help it shows the help and says so with help, the action then has nothing left to do.
func Positional(c *cli.Context) (pos []string, help bool, err error) {
	pos, err = Interspersed(c)
	if errors.Is(err, ErrHelp) {
		return nil, true, ShowHelp(c)
	}
	if err != nil {
		return nil, false, cli.Exit(fmt.Sprintf("%v (see `%s --help`)", err, FullName(c)), 2)
	}
	return pos, false, nil
}

// FullName is the command's name as typed, e.g. "cairn backup verify".
func FullName(c *cli.Context) string {
	name := c.App.Name
	for i := len(c.Lineage()) - 1; i >= 0; i-- { // the root first
		if cmd := c.Lineage()[i].Command; cmd != nil && cmd.Name != "" && cmd.Name != c.App.Name {
			name += " " + cmd.Name
		}
	}
	return name
}

// ShowHelp prints the command's help, as --help before the arguments would.
func ShowHelp(c *cli.Context) error {
	// The help of a command is looked up among its parent's commands.
	if l := c.Lineage(); len(l) > 1 {
		return cli.ShowCommandHelp(l[1], c.Command.Name)
	}
	return cli.ShowSubcommandHelp(c)
}
