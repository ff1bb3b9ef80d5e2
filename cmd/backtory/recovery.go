package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/internal/atomicfile"
	"github.com/backtory/backtory/recovery"
)

func init() {
	register(command{name: "recovery-script", summary: "write recover.sh, the bare-metal recovery script, for the set at --at (default: the newest)", run: runRecoveryScript,
		flags: func() *pflag.FlagSet {
			return recoveryScriptFlags(new(globals), new(string), new(string), new(string), new(bool))
		}})
}

// recoveryBinary returns the static backtory that publishRecovery uploads
// for the rescue system; tests point it at a built binary.
var recoveryBinary = os.Executable

// recoveryScriptFlags returns the flag set of recovery-script, bound to the given values
// (also for its help, man page and completions).
func recoveryScriptFlags(g *globals, at, setID, out *string, here *bool) *pflag.FlagSet {
	fs := pflag.NewFlagSet("recovery-script", pflag.ContinueOnError)
	g.register(fs)
	fs.StringVar(at, "at", "", "take the layout from the newest set at or before this time (default: the newest set)")
	fs.StringVar(setID, "set", "", "take the layout from this set id")
	fs.BoolVar(here, "layout-from-here", false, "capture the layout of this machine now, instead of using the set's (for sets without one)")
	fs.StringVarP(out, "output", "o", "", "where to write the script (required; - for stdout)")
	return fs
}

func runRecoveryScript(ctx context.Context, st streams, args []string) error {
	g := globals{streams: st}
	var at, setID, out string
	var here bool
	fs := recoveryScriptFlags(&g, &at, &setID, &out, &here)
	if err := st.parseFlags(fs, args); err != nil {
		return err
	}
	if out == "" || fs.NArg() > 0 {
		return usagef("recovery-script: usage: backtory recovery-script [--at TIME | --set ID] -o recover.sh")
	}
	ses, err := g.open(ctx)
	if err != nil {
		return err
	}
	defer ses.Close()
	log := ses.log
	src, err := g.layoutSource(ses.cfg)
	if err != nil {
		return err
	}
	_, m, err := ses.pick(ctx, src, setID, at)
	if err != nil {
		return err
	}
	pub := ses.publisher()
	binSHA, _ := pub.BinarySHA256(ctx, src.Name) // "": none published
	var layout []byte
	if here {
		if layout, err = captureLayout(ctx); err != nil {
			return err
		}
		log.Warn("the layout is this machine's now, not the one captured with set " + m.ID)
	}
	script, err := pub.Script(ctx, m, binSHA, layout)
	if err != nil {
		return err
	}
	if out == "-" {
		_, err = st.stdout.Write(script)
		return err
	}
	if err := atomicfile.WriteFile(out, script, 0o755); err != nil {
		return fmt.Errorf("recovery-script: %w", err)
	}
	log.Info("wrote recovery script", "file", out, "set", m.ID, "sha256", recovery.SHA256(script))
	return nil
}

// layoutSource returns the source whose set gives recover.sh its layout:
// --source, the only one, or the one at / (else the first). The script
// restores every source whichever gives the layout.
func (g *globals) layoutSource(cfg *Config) (*Source, error) {
	if g.source != "" || len(cfg.Sources) == 1 {
		return g.oneSource(cfg)
	}
	for i := range cfg.Sources {
		if filepath.Clean(cfg.Sources[i].Path) == "/" {
			return &cfg.Sources[i], nil
		}
	}
	return &cfg.Sources[0], nil
}

// publisher returns the recovery.Publisher of this session: every
// configured source with its sets, and the signer when the sets are
// signed.
func (s *session) publisher() *recovery.Publisher {
	p := &recovery.Publisher{
		Backend: s.b,
		Signer:  s.signer,
		Params: recovery.ScriptParams{
			Host: s.cfg.Host, RemoteURL: s.cfg.Remote.URL, RemoteUser: s.cfg.Remote.User,
			Sealed: s.sealer != nil, Tool: "backtory " + version,
		},
	}
	if ca, err := os.ReadFile(s.cfg.Remote.TLSCA); s.cfg.Remote.TLSCA != "" && err == nil {
		p.Params.TLSCA = string(ca) // the rescue system verifies the FTPS server with it too
	}
	for i := range s.cfg.Sources {
		src := &s.cfg.Sources[i]
		p.Sources = append(p.Sources, recovery.PublishedSource{
			Source: recovery.Source{Name: src.Name, Path: src.Path}, Sets: s.repository(src)})
	}
	return p
}

// publishRecovery publishes recover.sh for set m beside the sets, with the
// running static binary.
func (s *session) publishRecovery(ctx context.Context, m *archive.Manifest) error {
	bin, err := recoveryBinary()
	if err != nil {
		return fmt.Errorf("recovery script: find the running binary: %w", err)
	}
	return s.publisher().Publish(ctx, m, bin)
}

// captureLayout captures this machine's storage layout as the set's
// layout object (archive.BackupOptions.Layout).
func captureLayout(ctx context.Context) ([]byte, error) {
	l, err := recovery.Capture(ctx)
	if err != nil {
		return nil, err
	}
	return l.Bundle()
}
