package main

// The hidden man command: `backtory man --readme README.md DIR` writes the
// manual pages (backtory(8), backtory-CMD(8), backtory.yaml(5)) from the
// command table's flag sets and the README's sections, for `make man` and
// the Debian package.

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/backtory/backtory/internal/atomicfile"
	"github.com/backtory/backtory/internal/clidoc"
)

func init() {
	register(command{name: "man", summary: "write the manual pages into a directory (for packaging)", run: runMan, hidden: true,
		flags: func() *pflag.FlagSet { return manFlags(new(string)) }})
	takesArgs["man"] = "DIR"
}

// manFlags returns the flag set of man, bound to the given value.
func manFlags(readme *string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("man", pflag.ContinueOnError)
	fs.StringVar(readme, "readme", "README.md", "the README whose sections the pages take (Configuration, Exit codes, ...)")
	return fs
}

// The README sections each page includes, by their heading.
var (
	mainPageSections   = []string{"## Commands", "### Exit codes", "## Running it regularly", "## Restoring"}
	configPageSections = []string{"## Configuration"}
)

func runMan(_ context.Context, st streams, args []string) error {
	var readme string
	fs := manFlags(&readme)
	if err := st.parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("man: want the directory to write the pages into")
	}
	md, err := os.ReadFile(readme)
	if err != nil {
		return usagef("man: %v", err)
	}
	sections := func(titles []string) ([]clidoc.Section, error) {
		var out []clidoc.Section
		for _, t := range titles {
			body, err := clidoc.ReadmeSection(string(md), t)
			if err != nil {
				return nil, fmt.Errorf("man: %s: %w", readme, err)
			}
			out = append(out, clidoc.Section{Title: strings.TrimLeft(t, "# "), Body: body})
		}
		return out, nil
	}
	mainSecs, err := sections(mainPageSections)
	if err != nil {
		return err
	}
	cfgSecs, err := sections(configPageSections)
	if err != nil {
		return err
	}
	dir := fs.Arg(0)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("man: %w", err)
	}
	p := program()
	p.Date = manDate().Format("2006-01-02")
	write := func(name string, f func(io.Writer) error) error {
		if err := atomicfile.Write(filepath.Join(dir, name), 0o644, f); err != nil {
			return fmt.Errorf("man: %w", err)
		}
		fmt.Fprintln(st.stdout, filepath.Join(dir, name))
		return nil
	}
	if err := write("backtory.8", func(w io.Writer) error { return clidoc.MainPage(w, p, mainSecs) }); err != nil {
		return err
	}
	if err := write("backtory.yaml.5", func(w io.Writer) error {
		return clidoc.ConfigPage(w, p, defaultConfigPath, cfgSecs)
	}); err != nil {
		return err
	}
	for _, c := range p.Commands {
		if err := write(clidoc.PageName(p, c.Name), func(w io.Writer) error { return clidoc.CommandPage(w, p, c) }); err != nil {
			return err
		}
	}
	return nil
}

// manDate is SOURCE_DATE_EPOCH (reproducible builds), else today.
func manDate() time.Time {
	var sec int64
	if _, err := fmt.Sscan(os.Getenv("SOURCE_DATE_EPOCH"), &sec); err == nil {
		return time.Unix(sec, 0).UTC()
	}
	return time.Now().UTC()
}
