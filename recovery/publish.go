package recovery

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/remote"
)

// Signer makes the detached OpenPGP signatures that a rescue system checks
// with stock gpg before it trusts recover.sh or the static binary, and
// gives the public key the script pins (archive/seal's Box in key mode).
type Signer interface {
	SignerFingerprint() string
	WriteSignerPublicKey(w io.Writer) error
	SignDetached(dst io.Writer, src io.Reader) error
}

// Sets is one source's sets on the remote, as the script's catalog and
// its layout need them (archive's repository of the source).
type Sets interface {
	SetIDs(ctx context.Context) ([]string, error)
	Manifest(ctx context.Context, id string) (*archive.Manifest, string, error)
	Layout(ctx context.Context, m *archive.Manifest) ([]byte, error)
}

// Publisher writes recover.sh for a set and publishes it beside the sets:
// <host>/<source>/recover.sh, with the static backtory (backtory and
// backtory.sha256) and, with a Signer, their detached signatures.
type Publisher struct {
	Backend remote.Backend
	// Signer signs the script and the binary; nil (unsealed sets, or
	// passphrase mode) publishes no signatures.
	Signer Signer
	// Params holds what does not depend on the set: Host, RemoteURL,
	// RemoteUser, Sealed, Tool. Publish and Script fill in the rest.
	Params ScriptParams
	// Sources are every configured source, with their sets.
	Sources []PublishedSource
}

// PublishedSource is a configured source and its sets on the remote.
type PublishedSource struct {
	Source
	Sets Sets
}

// Publish uploads recover.sh for set m, and the binary at binPath when the
// remote's copy differs (backtory.sha256 says which it has). Signatures go
// before what they sign: a script without a matching signature is
// refused, a stale signature beside a new script is not a risk.
func (p *Publisher) Publish(ctx context.Context, m *archive.Manifest, binPath string) error {
	dir := archive.SourceDir(p.Params.Host, m.Source)
	binSHA, err := fileSHA256(binPath)
	if err != nil {
		return fmt.Errorf("recovery script: %w", err)
	}
	if have, err := p.BinarySHA256(ctx, m.Source); err != nil || have != binSHA {
		if err := p.putFile(ctx, path.Join(dir, archive.BinaryName), path.Join(dir, archive.BinarySigName), binPath); err != nil {
			return err
		}
		if err := p.put(ctx, path.Join(dir, archive.BinarySHA256Name), []byte(binSHA+"  "+archive.BinaryName+"\n")); err != nil {
			return err
		}
	}
	script, err := p.Script(ctx, m, binSHA, nil)
	if err != nil {
		return err
	}
	if p.Signer != nil {
		sig, err := p.sign(bytes.NewReader(script), archive.RecoveryScriptName)
		if err != nil {
			return err
		}
		if err := p.put(ctx, path.Join(dir, archive.RecoveryScriptSigName), sig); err != nil {
			return err
		}
	}
	return p.put(ctx, path.Join(dir, archive.RecoveryScriptName), script)
}

// Script renders recover.sh for set m: its layout (or layout, when not
// nil, a bundle captured elsewhere), the catalog of every source's sets
// with each differential's full, and binSHA, the SHA-256 of the static
// binary beside it ("" for none).
func (p *Publisher) Script(ctx context.Context, m *archive.Manifest, binSHA string, layout []byte) ([]byte, error) {
	sp := p.Params
	sp.BinarySHA256, sp.LayoutSet = binSHA, m.ID
	if sp.Generated.IsZero() {
		sp.Generated = time.Now()
	}
	var own Sets
	for _, s := range p.Sources {
		if s.Name == m.Source {
			own = s.Sets
			// The set's own source comes first: it is files' default.
			sp.Sources = append([]Source{s.Source}, sp.Sources...)
		} else {
			sp.Sources = append(sp.Sources, s.Source)
		}
		refs, err := Catalog(ctx, s.Name, s.Sets)
		if err != nil {
			return nil, fmt.Errorf("recovery script: %w", err)
		}
		sp.Sets = append(sp.Sets, refs...)
	}
	if own == nil {
		return nil, fmt.Errorf("recovery script: set %s is of source %s, which the config does not have", m.ID, m.Source)
	}
	if p.Signer != nil {
		var pub bytes.Buffer
		if err := p.Signer.WriteSignerPublicKey(&pub); err != nil {
			return nil, fmt.Errorf("recovery script: %w", err)
		}
		sp.SignerFingerprint, sp.SignerPublicKey = p.Signer.SignerFingerprint(), pub.String()
	}
	sp.Layout = &Layout{Version: LayoutVersion, Host: sp.Host, Captured: m.Started,
		Boot: Boot{Mode: "bios", Loader: "unknown"}}
	var err error
	if layout == nil && m.Layout != nil {
		if layout, err = own.Layout(ctx, m); err != nil {
			return nil, fmt.Errorf("recovery script: layout of %s: %w", m.ID, err)
		}
	}
	if layout != nil {
		if sp.Layout, err = ParseBundle(layout); err != nil {
			return nil, fmt.Errorf("recovery script: layout of %s: %w", m.ID, err)
		}
	}
	var out bytes.Buffer
	if err := Render(&out, sp); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// Catalog lists the sets of source, oldest first, each differential with
// the full it is taken against (read from its manifest).
func Catalog(ctx context.Context, source string, sets Sets) ([]SetRef, error) {
	ids, err := sets.SetIDs(ctx)
	if err != nil {
		return nil, err
	}
	refs := make([]SetRef, 0, len(ids))
	for _, id := range ids {
		ref := SetRef{Source: source, ID: id}
		if kind, _, _ := archive.ParseSetID(id); kind == archive.KindDiff {
			m, _, err := sets.Manifest(ctx, id)
			if err != nil {
				return nil, err
			}
			if m.Base == nil {
				return nil, fmt.Errorf("differential %s of %s names no full", id, source)
			}
			ref.Base = m.Base.ID
		}
		refs = append(refs, ref)
	}
	return refs, nil
}

// BinarySHA256 reads <host>/<source>/backtory.sha256: the SHA-256 of the
// static binary published beside the sets of source.
func (p *Publisher) BinarySHA256(ctx context.Context, source string) (string, error) {
	name := path.Join(archive.SourceDir(p.Params.Host, source), archive.BinarySHA256Name)
	rc, err := p.Backend.Get(ctx, name, 0)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, 256))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", name, err)
	}
	f := strings.Fields(string(raw))
	if len(f) == 0 || len(f[0]) != 64 {
		return "", fmt.Errorf("%s: not a SHA-256", name)
	}
	return f[0], nil
}

// putFile uploads the file at file as name, with its signature (sigName)
// first.
func (p *Publisher) putFile(ctx context.Context, name, sigName, file string) error {
	if p.Signer != nil {
		f, err := os.Open(file)
		if err != nil {
			return fmt.Errorf("sign %s: %w", file, err)
		}
		sig, err := p.sign(f, file)
		f.Close()
		if err != nil {
			return err
		}
		if err := p.put(ctx, sigName, sig); err != nil {
			return err
		}
	}
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("upload %s: %w", name, err)
	}
	defer f.Close()
	if err := p.Backend.Put(ctx, name, f); err != nil {
		return fmt.Errorf("upload %s: %w", name, err)
	}
	return nil
}

func (p *Publisher) put(ctx context.Context, name string, data []byte) error {
	if err := p.Backend.Put(ctx, name, bytes.NewReader(data)); err != nil {
		return fmt.Errorf("upload %s: %w", name, err)
	}
	return nil
}

func (p *Publisher) sign(r io.Reader, what string) ([]byte, error) {
	var sig bytes.Buffer
	if err := p.Signer.SignDetached(&sig, r); err != nil {
		return nil, fmt.Errorf("sign %s: %w", what, err)
	}
	return sig.Bytes(), nil
}

func fileSHA256(file string) (string, error) {
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

// SHA256 returns the hex SHA-256 of a script, as logs and docs quote it.
func SHA256(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
