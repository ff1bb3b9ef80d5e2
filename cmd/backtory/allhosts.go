package main

import (
	"context"

	"github.com/spf13/pflag"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/archive/seal"
)

// target is one host's source that list, verify or prune acts on.
type target struct {
	host string
	src  *Source
}

// name is how output names the target's source: "source", or
// "host/source" when the command covers every host.
func (t target) name(all bool) string {
	if all {
		return t.host + "/" + t.src.Name
	}
	return t.src.Name
}

// allHostsFlag adds --all-hosts to a command that reads sets.
func allHostsFlag(fs *pflag.FlagSet, all *bool) {
	fs.BoolVar(all, "all-hosts", false, "act on every host's sets on the remote (an admin config, docs/fleet.md)")
}

// targets returns the configured host's sources (or --source), or with
// all every host directory on the remote and every source directory in it.
func (s *session) targets(ctx context.Context, g *globals, all bool) ([]target, error) {
	if !all {
		srcs, err := g.sources(s.cfg)
		if err != nil {
			return nil, err
		}
		out := make([]target, len(srcs))
		for i, src := range srcs {
			out[i] = target{s.cfg.Host, src}
		}
		return out, nil
	}
	hosts, err := archive.Hosts(ctx, s.b)
	if err != nil {
		return nil, err
	}
	var out []target
	for _, h := range hosts {
		infos, err := s.b.List(ctx, h)
		if err != nil {
			return nil, err
		}
		for _, i := range infos {
			if i.IsDir && (g.source == "" || g.source == i.Name) {
				out = append(out, target{h, &Source{Name: i.Name}})
			}
		}
	}
	return out, nil
}

// repositoryOf returns the repository of a target's sets. Another host's sets
// are opened with the same keys but expect that host's signature: its
// fingerprint in host_signers (a host can write only its own history).
func (s *session) repositoryOf(t target) (*archive.Repository, error) {
	r := &archive.Repository{Backend: s.b, SpoolDir: s.spool, Host: t.host, Source: t.src.Name, Sealer: s.sealer}
	enc := s.cfg.Encryption
	if t.host == s.cfg.Host || enc == nil || enc.Mode == seal.ModePassphrase {
		return r, nil
	}
	fpr, ok := s.cfg.HostSigners[t.host]
	if !ok {
		return nil, usagef("%s: host %s: no entry in host_signers (the fingerprint of the key that signs its sets; docs/fleet.md)", s.cfg.path, t.host)
	}
	c := *enc
	if c.SigningKey != "" { // this config's own key opens, it does not sign here
		c.DecryptionKeys = append(append([]string(nil), c.DecryptionKeys...), c.SigningKey)
		c.SigningKey = ""
	}
	c.SignerFingerprint = fpr
	box, err := seal.New(c)
	if err != nil {
		return nil, usagef("%s: host_signers: %s: %v", s.cfg.path, t.host, err)
	}
	r.Sealer = box
	return r, nil
}
