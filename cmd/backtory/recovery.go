package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/archive/seal"
	"github.com/backtory/backtory/recovery"
	"github.com/backtory/backtory/remote"
)

func init() {
	register(command{name: "recovery-script", summary: "write recover.sh, the bare-metal recovery script, for the set at --at (default: the newest)", run: runRecoveryScript})
}

// recoveryBinary returns the static backtory that publishRecovery uploads
// for the rescue system; tests point it at a built binary.
var recoveryBinary = os.Executable

func runRecoveryScript(ctx context.Context, args []string) error {
	var g globals
	var at, setID, out string
	var here bool
	fs := pflag.NewFlagSet("recovery-script", pflag.ContinueOnError)
	g.register(fs)
	fs.StringVar(&at, "at", "", "take the layout from the newest set at or before this time (default: the newest set)")
	fs.StringVar(&setID, "set", "", "take the layout from this set id")
	fs.BoolVar(&here, "layout-from-here", false, "capture the layout of this machine now, instead of using the set's (for sets without one)")
	fs.StringVarP(&out, "output", "o", "", "where to write the script (required; - for stdout)")
	if err := parseFlags(fs, args); err != nil {
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
	cfg, log, b, sealer := ses.cfg, ses.log, ses.b, ses.sealer
	src, err := g.oneSource(cfg)
	if err != nil {
		return err
	}
	_, m, err := ses.pick(ctx, src, setID, at)
	if err != nil {
		return err
	}
	binSHA := ""
	if sum, err := remoteBinarySHA(ctx, b, cfg.Host, src.Name); err == nil {
		binSHA = sum
	}
	var layout []byte
	if here {
		if layout, err = captureLayout(ctx); err != nil {
			return err
		}
		log.Warn("the layout is this machine's now, not the one captured with set " + m.ID)
	}
	script, err := renderRecoveryWith(ctx, cfg, b, sealer, m, binSHA, layout)
	if err != nil {
		return err
	}
	if out == "-" {
		_, err = os.Stdout.Write(script)
		return err
	}
	if err := writeRecoveryFile(out, script, 0o755); err != nil {
		return fmt.Errorf("recovery-script: %w", err)
	}
	log.Info("wrote recovery script", "file", out, "set", m.ID, "sha256", recoverySHA256(script))
	return nil
}

// publishRecovery writes recover.sh for set m and uploads it next to the
// sets (<host>/<source>/recover.sh), with the running static binary as
// `backtory`; when sealer is a *seal.Box it also uploads detached
// signatures (recover.sh.asc, backtory.asc). The binary is uploaded only
// when the remote's differs (backtory.sha256 says which it has).
func publishRecovery(ctx context.Context, cfg *Config, b remote.Backend, sealer archive.Sealer, m *archive.Manifest) error {
	dir := archive.SourceDir(cfg.Host, m.Source)
	box, _ := sealer.(*seal.Box)
	if box != nil && box.SignerFingerprint() == "" {
		box = nil // passphrase mode: no signing key
	}
	binPath, err := recoveryBinary()
	if err != nil {
		return fmt.Errorf("recovery script: find the running binary: %w", err)
	}
	binSHA, err := recoveryFileSHA256(binPath)
	if err != nil {
		return fmt.Errorf("recovery script: %w", err)
	}
	if have, err := remoteBinarySHA(ctx, b, cfg.Host, m.Source); err != nil || have != binSHA {
		if err := putRecoveryFile(ctx, b, path.Join(dir, archive.BinaryName), binPath); err != nil {
			return err
		}
		if box != nil {
			if err := putRecoverySignature(ctx, b, box, path.Join(dir, archive.BinarySigName), binPath); err != nil {
				return err
			}
		}
		name := path.Join(dir, archive.BinarySHA256Name)
		if err := b.Put(ctx, name, strings.NewReader(binSHA+"  "+archive.BinaryName+"\n")); err != nil {
			return fmt.Errorf("upload %s: %w", name, err)
		}
	}
	script, err := renderRecovery(ctx, cfg, b, sealer, m, binSHA)
	if err != nil {
		return err
	}
	if box != nil {
		var sig bytes.Buffer
		if err := box.SignDetached(&sig, bytes.NewReader(script)); err != nil {
			return fmt.Errorf("recovery script: %w", err)
		}
		// The signature goes first: a script without a matching signature
		// is refused, a stale signature next to a new script is not a risk.
		name := path.Join(dir, archive.RecoveryScriptSigName)
		if err := b.Put(ctx, name, bytes.NewReader(sig.Bytes())); err != nil {
			return fmt.Errorf("upload %s: %w", name, err)
		}
	}
	name := path.Join(dir, archive.RecoveryScriptName)
	if err := b.Put(ctx, name, bytes.NewReader(script)); err != nil {
		return fmt.Errorf("upload %s: %w", name, err)
	}
	return nil
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

// renderRecovery renders recover.sh with the layout of set m and the
// catalog of every source's sets.
func renderRecovery(ctx context.Context, cfg *Config, b remote.Backend, sealer archive.Sealer, m *archive.Manifest, binSHA string) ([]byte, error) {
	return renderRecoveryWith(ctx, cfg, b, sealer, m, binSHA, nil)
}

// renderRecoveryWith renders recover.sh with the given layout object
// instead of the set's, when layout is not nil.
func renderRecoveryWith(ctx context.Context, cfg *Config, b remote.Backend, sealer archive.Sealer, m *archive.Manifest, binSHA string, layout []byte) ([]byte, error) {
	spool, err := spoolDir(cfg)
	if err != nil {
		return nil, err
	}
	p := recovery.ScriptParams{
		Host: cfg.Host, RemoteURL: cfg.Remote.URL, RemoteUser: cfg.Remote.User,
		Sealed: sealer != nil, BinarySHA256: binSHA, LayoutSet: m.ID,
		Tool: "backtory " + version, Generated: time.Now(),
	}
	var src *Source
	for i := range cfg.Sources {
		s := &cfg.Sources[i]
		if s.Name == m.Source {
			src = s
			// The set's own source comes first: it is files' default.
			p.Sources = append([]recovery.Source{{Name: s.Name, Path: s.Path}}, p.Sources...)
		} else {
			p.Sources = append(p.Sources, recovery.Source{Name: s.Name, Path: s.Path})
		}
		ids, err := newReader(cfg, b, s, spool, sealer).SetIDs(ctx)
		if err != nil {
			return nil, fmt.Errorf("recovery script: %w", err)
		}
		for _, id := range ids {
			p.Sets = append(p.Sets, recovery.SetRef{Source: s.Name, ID: id})
		}
	}
	if src == nil {
		return nil, fmt.Errorf("recovery script: set %s is of source %s, which the config does not have", m.ID, m.Source)
	}
	if box, ok := sealer.(*seal.Box); ok && box.SignerFingerprint() != "" {
		var pub bytes.Buffer
		if err := box.WriteSignerPublicKey(&pub); err != nil {
			return nil, fmt.Errorf("recovery script: %w", err)
		}
		p.SignerFingerprint, p.SignerPublicKey = box.SignerFingerprint(), pub.String()
	}
	p.Layout = &recovery.Layout{Version: recovery.LayoutVersion, Host: cfg.Host, Captured: m.Started,
		Boot: recovery.Boot{Mode: "bios", Loader: "unknown"}}
	if layout == nil && m.Layout != nil {
		if layout, err = newReader(cfg, b, src, spool, sealer).Layout(ctx, m); err != nil {
			return nil, fmt.Errorf("recovery script: layout of %s: %w", m.ID, err)
		}
	}
	if layout != nil {
		if p.Layout, err = recovery.ParseBundle(layout); err != nil {
			return nil, fmt.Errorf("recovery script: layout of %s: %w", m.ID, err)
		}
	}
	var out bytes.Buffer
	if err := recovery.Render(&out, p); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// remoteBinarySHA reads <host>/<source>/backtory.sha256 (archive.BinarySHA256Name).
func remoteBinarySHA(ctx context.Context, b remote.Backend, host, source string) (string, error) {
	rc, err := b.Get(ctx, path.Join(archive.SourceDir(host, source), archive.BinarySHA256Name), 0)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, 256))
	if err != nil {
		return "", err
	}
	f := strings.Fields(string(raw))
	if len(f) == 0 || len(f[0]) != 64 {
		return "", fmt.Errorf("%s: not a SHA-256", archive.BinarySHA256Name)
	}
	return f[0], nil
}

func putRecoveryFile(ctx context.Context, b remote.Backend, name, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("upload %s: %w", name, err)
	}
	defer f.Close()
	if err := b.Put(ctx, name, f); err != nil {
		return fmt.Errorf("upload %s: %w", name, err)
	}
	return nil
}

func putRecoverySignature(ctx context.Context, b remote.Backend, box *seal.Box, name, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("sign %s: %w", file, err)
	}
	defer f.Close()
	var sig bytes.Buffer
	if err := box.SignDetached(&sig, f); err != nil {
		return fmt.Errorf("sign %s: %w", file, err)
	}
	if err := b.Put(ctx, name, &sig); err != nil {
		return fmt.Errorf("upload %s: %w", name, err)
	}
	return nil
}

func recoveryFileSHA256(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", file, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func recoverySHA256(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// writeRecoveryFile writes data to a temporary file beside path and renames it.
func writeRecoveryFile(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
