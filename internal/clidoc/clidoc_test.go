package clidoc

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestReadmeSection(t *testing.T) {
	md := "# T\n\n## A\none\n```sh\n# not a heading\n```\n### A.1\ntwo\n## B\nthree\n"
	for _, c := range []struct{ title, want, err string }{
		{"## A", "one\n```sh\n# not a heading\n```\n### A.1\ntwo", ""},
		{"### A.1", "two", ""},
		{"## B", "three", ""},
		{"## C", "", "no section"},
	} {
		got, err := ReadmeSection(md, c.title)
		if got != c.want || (c.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("ReadmeSection(%q) = %q, %v; want %q, %q", c.title, got, err, c.want, c.err)
		}
	}
}

func TestRoffEscapes(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"--flag", `\-\-flag`},
		{`a\b`, `a\eb`},
		{".starts with a dot", `\&.starts with a dot`},
		{"'quote", `\&'quote`},
	} {
		if got := escLine(c.in); got != c.want {
			t.Errorf("escLine(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := inline("see [docs/x.md](docs/x.md), `--at`, **bold**"); got != "see docs/x.md, --at, bold" {
		t.Errorf("inline: %q", got)
	}
}

func TestCommandPage(t *testing.T) {
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	fs.StringP("config", "c", "/etc/x.yaml", "config file")
	fs.Bool("dry-run", false, "write nothing")
	p := &Program{Name: "prog", Version: "1.0", Date: "2026-01-01"}
	var b bytes.Buffer
	if err := CommandPage(&b, p, Command{Name: "do-it", Summary: "do it", Args: "[PATH...]", Flags: fs}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`.TH "PROG-DO-IT" "8" "2026-01-01" "prog 1.0"`,
		`prog\-do\-it \- do it`,
		`\fBprog do\-it\fR [\fIflags\fR] \fI[PATH...]\fR`,
		`\fB\-c\fR, \fB\-\-config\fR \fIstring\fR`,
		`(default /etc/x.yaml)`,
		`\fB\-\-dry\-run\fR` + "\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("page lacks %q:\n%s", want, b.String())
		}
	}
}
