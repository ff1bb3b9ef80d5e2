package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/template"

	"github.com/spf13/pflag"

	"github.com/backtory/backtory/archive/seal"
	"github.com/backtory/backtory/internal/atomicfile"
)

func init() {
	register(command{name: "init", summary: "write a commented config and generate the host's OpenPGP key", run: runInit,
		flags: func() *pflag.FlagSet {
			return initFlags(new(string), new(string), new(string), new(string), new(string), new(bool))
		}})
}

var configTemplate = template.Must(template.New("config").Parse(`# backtory configuration (see README.md for every key).
# Written by 'backtory init'; edit it freely.

# The name of this machine on the remote: <remote>/<host>/<source>/<set>.
host: {{.Host}}

# Local state: the run lock, cached block signatures, the newest set seen.
state_dir: {{.StateDir}}

# What to back up. snapshot: none | zfs | lvm | btrfs (see docs/snapshots.md).
sources:
  - name: {{.Name}}
    path: {{.Source}}
    snapshot: none
    # Patterns are relative to the source's path: "/x/**" is {{.Source}}/x.
    exclude: [{{.Exclude}}]

# Where the sets go: file:///dir, ftp://host/dir, ftps://host/dir (docs/ftp.md),
# sftp://user@host/dir (docs/sftp.md), s3://endpoint/bucket/prefix (docs/s3.md).
remote:
  url: {{.Remote}}
  # user: backup
  # password_file: /etc/backtory/ftp.pass
  # ssh_key: /etc/backtory/ssh/id_ed25519   # sftp; then: backtory remote trust
  # credentials_file: /etc/backtory/s3.credentials   # s3://, mode 0600

# Every object is compressed, then encrypted to all recipients and signed by
# the host key (docs/sealing.md). Add an offline admin key to recipients so
# that a dead host's backups stay readable.
encryption:
  recipients: [{{.Public}}]
  signing_key: {{.Secret}}

# A full the first time, then differentials against the last full.
policy:
  full_every: 7d                 # a new full once the last is this old
  full_when_diff_exceeds: 50%    # ... or once a differential grows past half the full
  keep_fulls: 4                  # prune keeps the newest 4 fulls and their differentials
  # keep_diffs: "7d:all,60d:weekly"

volume_size: 256MiB
compression: zstd:3

# Hooks run around the backup (docs/hooks.md). This file must then be owned
# by root and not writable by others.
# hooks:
#   pre_backup: ["/usr/local/sbin/dump-databases"]
#   on_failure: ["/usr/local/sbin/page-oncall"]
`))

// initFlags returns the flag set of init, bound to the given values
// (also for its help, man page and completions).
func initFlags(config, host, remoteURL, source, stateDir *string, force *bool) *pflag.FlagSet {
	fs := pflag.NewFlagSet("init", pflag.ContinueOnError)
	fs.StringVarP(config, "config", "c", defaultConfigPath, "where to write the config")
	fs.StringVar(host, "host", "", "host name on the remote (default: this machine's hostname)")
	fs.StringVar(remoteURL, "remote", "file:///srv/backtory", "remote URL")
	fs.StringVar(source, "source", "/", "the path to back up (the source is named after it: / is root, /srv/www srv-www)")
	fs.StringVar(stateDir, "state-dir", "/var/lib/backtory", "local state directory")
	fs.BoolVar(force, "force", false, "overwrite an existing config (never an existing key)")
	return fs
}

func runInit(ctx context.Context, st streams, args []string) error {
	var config, host, remoteURL, source, stateDir string
	var force bool
	fs := initFlags(&config, &host, &remoteURL, &source, &stateDir, &force)
	if err := st.parseFlags(fs, args); err != nil {
		return err
	}
	if host == "" {
		h, err := os.Hostname()
		if err != nil {
			return usagef("init: --host is needed: %v", err)
		}
		host = strings.SplitN(h, ".", 2)[0]
	}
	if !filepath.IsAbs(source) {
		return usagef("init: --source %q: give the absolute path to back up", source)
	}
	source = filepath.Clean(source)
	if _, err := os.Stat(config); err == nil && !force {
		return usagef("init: %s exists: edit it, or pass --force to overwrite it", config)
	}
	dir := filepath.Dir(config)
	keys := filepath.Join(dir, "keys")
	if err := os.MkdirAll(keys, 0o700); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	pub, sec := filepath.Join(keys, "host.pub.asc"), filepath.Join(keys, "host.sec.asc")
	var fpr string
	if k, err := seal.ReadKeyFile(sec); err == nil {
		fpr = k.Fingerprint() // keep an existing key: backups depend on it
	} else {
		_, email, err := hostUserID()
		if err != nil {
			email = "root@" + host
		}
		k, err := seal.GenerateKey("backtory "+host, email)
		if err != nil {
			return fmt.Errorf("init: generate key: %w", err)
		}
		if err := k.SaveFiles(pub, sec, nil); err != nil {
			return fmt.Errorf("init: %w", err)
		}
		fpr = k.Fingerprint()
	}
	var b strings.Builder
	err := configTemplate.Execute(&b, map[string]string{"Host": host, "StateDir": stateDir, "Source": source,
		"Name": sourceName(source), "Exclude": initExcludes(source), "Remote": remoteURL, "Public": pub, "Secret": sec})
	if err != nil {
		return err
	}
	if _, err := parseConfig(config, []byte(b.String())); err != nil {
		return fmt.Errorf("init: the config it would write is invalid: %w", err)
	}
	if err := atomicfile.WriteFile(config, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	fmt.Fprintf(st.stdout, `Wrote %s and the host key %s (fingerprint %s).

Keep OFFLINE, away from this machine, or its backups die with it:
  - a copy of the secret key %s (it decrypts every backup), or better,
    an admin key of your own added to 'recipients' (its secret part never on this host);
  - the fingerprint above (a restore checks signatures against it).
Then check the config and run: backtory backup --config %s
`, config, pub, fpr, sec, config)
	return nil
}

// sourceName names a source after its path: "root" for /, else the path
// with its slashes as dashes (/srv/www is srv-www).
func sourceName(p string) string {
	if p == "/" {
		return "root"
	}
	name := badNameChars.ReplaceAllString(strings.ReplaceAll(strings.Trim(p, "/"), "/", "-"), "_")
	if !nameRe.MatchString(name) {
		name = "src-" + name
	}
	return name
}

var badNameChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// systemExcludes are the live paths that hold no files worth keeping:
// kernel and runtime file systems, temporaries and caches.
var systemExcludes = []string{"/proc", "/sys", "/dev", "/run", "/tmp", "/var/tmp", "/var/cache"}

// initExcludes returns the exclude list (YAML flow items) for a source at
// p: the system paths inside it, relative to it.
func initExcludes(p string) string {
	var out []string
	for _, x := range systemExcludes {
		rel := x
		if p != "/" {
			var ok bool
			if rel, ok = strings.CutPrefix(x, p); !ok || !strings.HasPrefix(rel, "/") {
				continue
			}
		}
		out = append(out, strconv.Quote(rel+"/**"))
	}
	return strings.Join(out, ", ")
}
