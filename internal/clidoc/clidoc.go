// Package clidoc writes the manual pages and the bash, zsh and fish
// completions of a command-line program from the description of its
// commands and their pflag flag sets, so that neither can drift from the
// flags the program parses.
package clidoc

import (
	"github.com/spf13/pflag"
)

// Program describes a command-line program.
type Program struct {
	Name     string // "backtory"
	Summary  string // one line, for the NAME section of the main page
	Version  string // in the pages' footer
	Date     string // in the pages' footer (YYYY-MM-DD)
	Commands []Command
	// Values says what the value of a flag of a command completes to;
	// nil: files for every flag that takes a value.
	Values func(cmd string, f *pflag.Flag) Value
	// Helper is the hidden command line that prints the words of a dynamic
	// Value, one per line: Helper + " " + Value.Dynamic, followed by
	// "--config FILE" when the command line being completed has one.
	Helper string
}

// A Command is one command, or one subcommand (Name "key generate").
type Command struct {
	Name    string
	Summary string
	Args    string         // the arguments after the flags, "" for none
	Flags   *pflag.FlagSet // nil for a command with subcommands
	Subs    []Command
}

// A Value is what a flag's value completes to.
type Value struct {
	Files   bool     // file names
	Words   []string // a fixed list (text json)
	Dynamic string   // a list the program prints through Helper
}

// valueOf returns what flag f of command cmd completes to; a boolean flag
// takes no value and gets the zero Value.
func (p *Program) valueOf(cmd string, f *pflag.Flag) Value {
	if f.NoOptDefVal != "" {
		return Value{}
	}
	if p.Values != nil {
		return p.Values(cmd, f)
	}
	return Value{Files: true}
}

// leaves returns every command that has flags (the subcommands in place
// of a command that has some), in order.
func (p *Program) leaves() []Command {
	var out []Command
	for _, c := range p.Commands {
		if len(c.Subs) == 0 {
			out = append(out, c)
			continue
		}
		for _, s := range c.Subs {
			s.Name = c.Name + " " + s.Name
			out = append(out, s)
		}
	}
	return out
}

// flags returns the flags of fs in their order of definition.
func flags(fs *pflag.FlagSet) []*pflag.Flag {
	var out []*pflag.Flag
	if fs == nil {
		return out
	}
	fs.SortFlags = false
	fs.VisitAll(func(f *pflag.Flag) { out = append(out, f) })
	return out
}

// flagWords returns "--name" and "-x" for each flag of fs.
func flagWords(fs *pflag.FlagSet) []string {
	var out []string
	for _, f := range flags(fs) {
		out = append(out, "--"+f.Name)
		if f.Shorthand != "" {
			out = append(out, "-"+f.Shorthand)
		}
	}
	return out
}
