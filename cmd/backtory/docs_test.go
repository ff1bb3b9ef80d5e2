package main

// The man pages and completions are generated from the command table:
// these tests check that every command and flag is in its page and in each
// shell's completion, that every config key the loader knows is in
// backtory.yaml(5), and they run the bash completion in a real bash.

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/backtory/backtory/internal/clidoc"
	"github.com/backtory/backtory/internal/testenv"
)

// leafCommands returns every command (or subcommand, "key generate") with
// its flag set, failing for a command that exposes none.
func leafCommands(t *testing.T) []clidoc.Command {
	t.Helper()
	var out []clidoc.Command
	for _, n := range commandNames() {
		c := commands[n]
		if c.flags == nil && len(c.subs) == 0 {
			t.Errorf("command %s exposes no flag set (command.flags or subs): its page and completion cannot list its flags", n)
			continue
		}
		if c.flags != nil {
			out = append(out, clidoc.Command{Name: n, Flags: c.flags()})
		}
		for _, s := range c.subs {
			out = append(out, clidoc.Command{Name: n + " " + s.name, Flags: s.flags()})
		}
	}
	return out
}

func flagNames(fs *pflag.FlagSet) []*pflag.Flag {
	var out []*pflag.Flag
	fs.VisitAll(func(f *pflag.Flag) { out = append(out, f) })
	return out
}

func TestManPagesListEveryCommandAndFlag(t *testing.T) {
	dir := t.TempDir()
	if code, _, stderr := backtoryOut(t, "man", "--readme", "../../README.md", dir); code != 0 {
		t.Fatalf("backtory man: exit %d: %s", code, stderr)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	main := read("backtory.8")
	for _, n := range commandNames() {
		if !strings.Contains(main, ".B "+strings.ReplaceAll(n, "-", `\-`)+"\n") {
			t.Errorf("backtory.8 does not list the command %s", n)
		}
	}
	for _, c := range leafCommands(t) {
		page := read("backtory-" + strings.Fields(c.Name)[0] + ".8")
		for _, f := range flagNames(c.Flags) {
			if !strings.Contains(page, `\fB\-\-`+strings.ReplaceAll(f.Name, "-", `\-`)+`\fR`) {
				t.Errorf("the page of %s lacks --%s", c.Name, f.Name)
			}
			if f.Shorthand != "" && !strings.Contains(page, `\fB\-`+f.Shorthand+`\fR, `) {
				t.Errorf("the page of %s lacks -%s", c.Name, f.Shorthand)
			}
		}
		if len(strings.Fields(c.Name)) > 1 && !strings.Contains(page, `.SS "`+strings.ReplaceAll(c.Name, "-", `\-`)+`"`) {
			t.Errorf("the page of %s lacks its subcommand section", c.Name)
		}
	}
	// Every page is valid roff for man (no warnings from groff).
	if man, err := exec.LookPath("man"); err == nil {
		pages, _ := filepath.Glob(filepath.Join(dir, "*"))
		for _, p := range pages {
			cmd := exec.Command(man, "--warnings=w", "-l", p)
			cmd.Env = append(os.Environ(), "MANWIDTH=80", "MAN_KEEP_STDERR=1")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("man -l %s: %v\n%s", p, err, out)
			}
			if strings.Contains(string(out), "warning:") {
				t.Errorf("man -l %s warns:\n%s", p, grepLines(string(out), "warning:"))
			}
		}
	} else {
		testenv.Missing(t, "man", "test/deps/deb.sh installs man-db")
	}
}

func grepLines(s, word string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// configKeys returns every key the config loader knows (the yaml tags of
// Config and the structs in it), as "parent.key".
func configKeys(t reflect.Type, prefix string, out map[string]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		out[prefix+name] = true
		configKeys(f.Type, name+".", out)
	}
}

func TestConfigPageListsEveryKey(t *testing.T) {
	dir := t.TempDir()
	if code, _, stderr := backtoryOut(t, "man", "--readme", "../../README.md", dir); code != 0 {
		t.Fatalf("backtory man: exit %d: %s", code, stderr)
	}
	page, err := os.ReadFile(filepath.Join(dir, "backtory.yaml.5"))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	configKeys(reflect.TypeOf(Config{}), "", keys)
	if len(keys) < 30 {
		t.Fatalf("only %d config keys found: %v", len(keys), keys)
	}
	for k := range keys {
		leaf := k[strings.LastIndex(k, ".")+1:]
		re := regexp.MustCompile(`(?m)^\s*(# *)?(\\- )?` + regexp.QuoteMeta(strings.ReplaceAll(leaf, "-", `\-`)) + `:`)
		if !re.Match(page) {
			t.Errorf("backtory.yaml(5) (README.md's Configuration) does not show the config key %s", k)
		}
	}
}

func TestCompletionsListEveryCommandAndFlag(t *testing.T) {
	script := func(shell string) string {
		code, out, stderr := backtoryOut(t, "completion", shell)
		if code != 0 {
			t.Fatalf("completion %s: exit %d: %s", shell, code, stderr)
		}
		return out
	}
	bash, zsh, fish := script("bash"), script("zsh"), script("fish")
	for _, n := range commandNames() {
		if !regexp.MustCompile(`compgen -W "[^"]*\b` + n + `\b`).MatchString(bash) {
			t.Errorf("bash completion lacks the command %s", n)
		}
		if !strings.Contains(zsh, "'"+n+":") {
			t.Errorf("zsh completion lacks the command %s", n)
		}
		if !strings.Contains(fish, "__fish_use_subcommand -a "+n+" ") {
			t.Errorf("fish completion lacks the command %s", n)
		}
	}
	for _, c := range leafCommands(t) {
		bashFlags := regexp.MustCompile(`(?m)^\t"` + c.Name + `"\) flags="([^"]*)"`).FindStringSubmatch(bash)
		zshBlock := regexp.MustCompile(`(?s)\t"` + c.Name + `"\)\n\t\titems=\((.*?)\t\t\)`).FindStringSubmatch(zsh)
		if bashFlags == nil || zshBlock == nil {
			t.Errorf("%s: no flag list in the bash (%v) or zsh (%v) completion", c.Name, bashFlags != nil, zshBlock != nil)
			continue
		}
		for _, f := range flagNames(c.Flags) {
			if !strings.Contains(" "+bashFlags[1]+" ", " --"+f.Name+" ") {
				t.Errorf("bash completion of %s lacks --%s", c.Name, f.Name)
			}
			if !strings.Contains(zshBlock[1], "'--"+f.Name+":") {
				t.Errorf("zsh completion of %s lacks --%s", c.Name, f.Name)
			}
			if !strings.Contains(fish, "-n '__backtory_is "+c.Name+"' -l "+f.Name+" ") {
				t.Errorf("fish completion of %s lacks --%s", c.Name, f.Name)
			}
			if f.Shorthand != "" && !strings.Contains(" "+bashFlags[1]+" ", " -"+f.Shorthand+" ") {
				t.Errorf("bash completion of %s lacks -%s", c.Name, f.Shorthand)
			}
		}
	}
	// The scripts parse in their shells.
	dir := t.TempDir()
	for _, s := range []struct {
		shell, text string
		args        []string
	}{
		{"bash", bash, []string{"-n"}},
		{"zsh", zsh, []string{"-n"}},
		{"fish", fish, []string{"--no-execute"}},
	} {
		sh := testenv.NeedTool(t, s.shell)
		p := filepath.Join(dir, s.shell)
		if err := os.WriteFile(p, []byte(s.text), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(sh, append(s.args, p)...).CombinedOutput(); err != nil {
			t.Errorf("%s %v: %v\n%s", s.shell, s.args, err, out)
		}
	}
}

// TestHelperBacktory is not a test: it runs the CLI with the arguments
// after "--" when BACKTORY_HELPER=1, as the `backtory` that the completion
// scripts call (as os/exec's tests run their helper process).
func TestHelperBacktory(t *testing.T) {
	if os.Getenv("BACKTORY_HELPER") != "1" {
		return
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Exit(run(context.Background(), args, os.Stdout, os.Stderr))
}

// bashComplete runs the bash completion for the command line line (the
// word under the cursor is the last, possibly empty) in a real bash, where
// the command backtory is this test binary's TestHelperBacktory, and
// returns the candidates.
func bashComplete(t *testing.T, line string) []string {
	t.Helper()
	bash := testenv.NeedTool(t, "bash")
	code, script, _ := backtoryOut(t, "completion", "bash")
	if code != 0 {
		t.Fatal("completion bash failed")
	}
	words := strings.Fields(line)
	if strings.HasSuffix(line, " ") {
		words = append(words, "")
	}
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = "'" + w + "'"
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	prog := "backtory() { BACKTORY_HELPER=1 '" + self + "' -test.run='^TestHelperBacktory$' -- \"$@\"; }\n" +
		script + "\nCOMP_WORDS=(" + strings.Join(q, " ") + ")\nCOMP_CWORD=" + strconv.Itoa(len(words)-1) +
		"\n_backtory\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
	cmd := exec.Command(bash, "--norc", "--noprofile", "-c", prog)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash completion of %q: %v\n%s", line, err, out)
	}
	return strings.Fields(string(out))
}

func TestBashCompletion(t *testing.T) {
	dir := t.TempDir()
	src := sampleTree(t, 0)
	cfg := writeConfig(t, dir, src, "")
	mustRun(t, "backup", "--config", cfg, "--full")
	ids, err := filepath.Glob(filepath.Join(dir, "remote", "testhost", "root", "full-*"))
	if err != nil || len(ids) != 1 {
		t.Fatalf("want one full on the remote, got %v", ids)
	}
	set := filepath.Base(ids[0])
	for _, c := range []struct{ line, want string }{
		{"backtory rest", "restore"},
		{"backtory restore --s", "--source --set"},
		{"backtory key g", "generate"},
		{"backtory key generate --pa", "--passphrase-file"},
		{"backtory restore --log-format ", "text json"},
		{"backtory list --config " + cfg + " --source ", "root"},
		{"backtory restore --config " + cfg + " --set ", set},
		{"backtory ls --config " + cfg + " --at ", strings.TrimPrefix(set, "full-")},
	} {
		if got := strings.Join(bashComplete(t, c.line), " "); got != c.want {
			t.Errorf("completing %q: got %q, want %q", c.line, got, c.want)
		}
	}
	// The set ids are cached in state_dir: with the remote gone, the
	// completion still offers them (and says nothing).
	if _, err := os.Stat(filepath.Join(dir, "state", "completion-sets")); err != nil {
		t.Fatalf("no completion cache: %v", err)
	}
	old := filepath.Join(dir, "state", "completion-sets")
	longAgo := time.Now().Add(-time.Hour)
	if err := os.Chtimes(old, longAgo, longAgo); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "remote"), filepath.Join(dir, "remote.gone")); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(bashComplete(t, "backtory restore --config "+cfg+" --set "), " "); got != set {
		t.Errorf("with the remote gone, completing --set: got %q, want the cached %q", got, set)
	}
}

// TestFishCompletion has a real fish complete partial command lines.
func TestFishCompletion(t *testing.T) {
	fish := testenv.NeedTool(t, "fish")
	code, script, _ := backtoryOut(t, "completion", "fish")
	if code != 0 {
		t.Fatal("completion fish failed")
	}
	p := filepath.Join(t.TempDir(), "backtory.fish")
	if err := os.WriteFile(p, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ line, want string }{
		{"backtory rest", "restore"},
		{"backtory restore --s", "--set --source"},
		{"backtory key g", "generate"},
		{"backtory key generate --pa", "--passphrase-file"},
		{"backtory restore --log-format ", "json text"},
	} {
		out, err := exec.Command(fish, "--no-config", "-c", "source "+p+"; complete -C '"+c.line+"'").CombinedOutput()
		if err != nil {
			t.Fatalf("fish: %v\n%s", err, out)
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			got = append(got, strings.SplitN(l, "\t", 2)[0])
		}
		if g := strings.Join(got, " "); g != c.want {
			t.Errorf("fish completing %q: got %q, want %q", c.line, g, c.want)
		}
	}
}
