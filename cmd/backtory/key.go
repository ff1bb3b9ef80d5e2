package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/backtory/backtory/archive/seal"
)

func init() {
	register(command{
		name:    "key",
		summary: "OpenPGP keys: generate, list (the config's), export, import, fingerprint",
		run: func(_ context.Context, st streams, args []string) error {
			return keyCommand(st, args)
		},
		subs: []subcommand{
			{name: "generate", summary: "generate a key pair (user ID default: \"backtory HOST <root@HOSTNAME>\")", flags: func() *pflag.FlagSet {
				return keyGenerateFlags(new(string), new(string), new(string), new(string), new(string))
			}},
			{name: "list", summary: "every key the config uses: file, fingerprints, user ID", flags: func() *pflag.FlagSet { return keyListFlags(new(string)) }},
			{name: "export", summary: "print the public key of a secret key file", flags: func() *pflag.FlagSet { return keyExportFlags(new(string)) }},
			{name: "import", summary: "check a key (e.g. from gpg --export-secret-keys) and store it with the right mode; FROM \"-\" or omitted: stdin", args: "[FROM]", flags: func() *pflag.FlagSet { return keyImportFlags(new(string)) }},
			{name: "fingerprint", summary: "print the fingerprint and user ID of each key", args: "FILE...", flags: keyFingerprintFlags},
		},
	})
}

const keyUsage = `usage:
  backtory key generate [--name NAME] [--email EMAIL] --public FILE --secret FILE [--passphrase-file FILE]
                                              user ID default: "backtory HOST <root@HOSTNAME>"
  backtory key list [--config FILE]           every key the config uses: file, fingerprints, user ID
  backtory key export --secret FILE           print the public key of a secret key file
  backtory key import --to FILE [FROM]        check a key (e.g. from gpg --export-secret-keys) and
                                              store it with the right mode; FROM "-" or omitted: stdin
  backtory key fingerprint FILE...            print the fingerprint and user ID of each key
Passphrases come from --passphrase-file or the environment variable BACKTORY_KEY_PASSPHRASE, never from the command line.`

// keyCommand runs `backtory key SUBCOMMAND`.
func keyCommand(st streams, args []string) error {
	if len(args) == 0 {
		return usagef("key: missing subcommand\n%s", keyUsage)
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "generate":
		return keyGenerate(st, args)
	case "export":
		return keyExport(st, args)
	case "import":
		return keyImport(st, args)
	case "fingerprint":
		return keyFingerprint(st, args)
	case "list":
		return keyList(st, args)
	case "-h", "--help", "help":
		fmt.Fprintln(st.stdout, keyUsage)
		return nil
	}
	return usagef("key: unknown subcommand %q\n%s", sub, keyUsage)
}

// keyGenerateFlags returns the flag set of key generate, bound to the given values.
func keyGenerateFlags(name, email, pub, sec, passFile *string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("key generate", pflag.ContinueOnError)
	fs.StringVar(name, "name", "", "user ID name (default \"backtory HOST\", this machine's short host name)")
	fs.StringVar(email, "email", "", "user ID email (default root@ this machine's host name)")
	fs.StringVar(pub, "public", "", "where to write the public key (armored)")
	fs.StringVar(sec, "secret", "", "where to write the secret key (armored, mode 0600)")
	fs.StringVar(passFile, "passphrase-file", "", "protect the secret key with the passphrase in this file")
	return fs
}

func keyGenerate(st streams, args []string) error {
	name, email, pub, sec, passFile := new(string), new(string), new(string), new(string), new(string)
	fs := keyGenerateFlags(name, email, pub, sec, passFile)
	if err := st.parseFlags(fs, args); err != nil {
		return err
	}
	if *pub == "" || *sec == "" {
		return usagef("key generate: needs --public and --secret\n%s", keyUsage)
	}
	if *name == "" || *email == "" {
		n, e, err := hostUserID()
		if err != nil {
			return usagef("key generate: give --name and --email: %v", err)
		}
		if *name == "" {
			*name = n
		}
		if *email == "" {
			*email = e
		}
	}
	pass, err := seal.ReadPassphrase(*passFile)
	if err != nil {
		return usagef("key generate: %v", err)
	}
	k, err := seal.GenerateKey(*name, *email)
	if err != nil {
		return usagef("key generate: %v", err)
	}
	if err := k.SaveFiles(*pub, *sec, pass); err != nil {
		return fmt.Errorf("key generate: %w", err)
	}
	protected := "not passphrase-protected"
	if pass != nil {
		protected = "passphrase-protected"
	}
	fmt.Fprintf(st.stdout, "fingerprint %s\npublic key  %s\nsecret key  %s (mode 0600, %s)\n\n", k.Fingerprint(), *pub, *sec, protected)
	fmt.Fprintf(st.stdout, "Keep a copy of %s (and its passphrase, if any) offline: without a secret key\n"+
		"that is a recipient, the backups cannot be decrypted once this host is lost.\n"+
		"Better still, add an offline admin key to encryption.recipients.\n", *sec)
	return nil
}

// keyExportFlags returns the flag set of key export, bound to the given value.
func keyExportFlags(sec *string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("key export", pflag.ContinueOnError)
	fs.StringVar(sec, "secret", "", "the secret key file")
	return fs
}

func keyExport(st streams, args []string) error {
	sec := new(string)
	fs := keyExportFlags(sec)
	if err := st.parseFlags(fs, args); err != nil {
		return err
	}
	if *sec == "" || fs.NArg() > 0 {
		return usagef("key export: needs --secret FILE\n%s", keyUsage)
	}
	k, err := seal.ReadKeyFile(*sec)
	if err != nil {
		return fmt.Errorf("key export: %w", err)
	}
	if !k.HasSecret() {
		return fmt.Errorf("key export: %s holds a public key, not a secret key", *sec)
	}
	return k.WritePublic(st.stdout)
}

func keyImport(st streams, args []string) error {
	to := new(string)
	fs := keyImportFlags(to)
	if err := st.parseFlags(fs, args); err != nil {
		return err
	}
	if *to == "" || fs.NArg() > 1 {
		return usagef("key import: needs --to FILE and at most one FROM\n%s", keyUsage)
	}
	from := st.stdin
	if fs.NArg() == 1 && fs.Arg(0) != "-" {
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			return fmt.Errorf("key import: %w", err)
		}
		defer f.Close()
		from = f
	}
	data, err := io.ReadAll(io.LimitReader(from, 16<<20))
	if err != nil {
		return fmt.Errorf("key import: read: %w", err)
	}
	k, err := seal.ImportKey(data, *to)
	if err != nil {
		return err
	}
	kind := "public key"
	if k.HasSecret() {
		kind = "secret key (mode 0600)"
	}
	fmt.Fprintf(st.stdout, "%s %s\nstored %s in %s\n", k.Fingerprint(), k.UserID(), kind, *to)
	return nil
}

func keyFingerprint(st streams, args []string) error {
	fs := keyFingerprintFlags()
	if err := st.parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("key fingerprint: needs a key FILE\n%s", keyUsage)
	}
	for _, path := range fs.Args() {
		k, err := seal.ReadKeyFile(path)
		if err != nil {
			return fmt.Errorf("key fingerprint: %w", err)
		}
		fmt.Fprintf(st.stdout, "%s %s\n", k.Fingerprint(), k.UserID())
	}
	return nil
}

// hostUserID returns the user ID of a host key made here: the name
// "backtory HOST" (the short host name) and the email root@HOSTNAME, so
// that every host's key says whose it is.
func hostUserID() (name, email string, err error) {
	h, err := os.Hostname()
	if err != nil {
		return "", "", err
	}
	return "backtory " + strings.SplitN(h, ".", 2)[0], "root@" + h, nil
}

// keyList prints every key the config's encryption section names: its
// role, file, primary fingerprint, user ID and subkeys.
func keyList(st streams, args []string) error {
	config := new(string)
	fs := keyListFlags(config)
	if err := st.parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*config)
	if err != nil {
		return err
	}
	enc := cfg.Encryption
	if enc == nil {
		fmt.Fprintf(st.stdout, "%s has no encryption section: sets are not sealed\n", cfg.path)
		return nil
	}
	if enc.Mode == seal.ModePassphrase {
		fmt.Fprintln(st.stdout, "passphrase mode: sets are sealed with a passphrase, no keys")
		return nil
	}
	type use struct{ role, file string }
	var uses []use
	if enc.SigningKey != "" {
		uses = append(uses, use{"signing_key", enc.SigningKey})
	}
	for _, f := range enc.Recipients {
		uses = append(uses, use{"recipient", f})
	}
	for _, f := range enc.DecryptionKeys {
		uses = append(uses, use{"decryption_key", f})
	}
	for i, u := range uses {
		if i > 0 {
			fmt.Fprintln(st.stdout)
		}
		k, err := seal.ReadKeyFile(u.file)
		if err != nil {
			return fmt.Errorf("key list: %s: %w", u.role, err)
		}
		kind := "public"
		if k.HasSecret() {
			kind = "secret"
		}
		fmt.Fprintf(st.stdout, "%s %s (%s)\n  primary %s %s\n", u.role, u.file, kind, k.Fingerprint(), k.UserID())
		for _, sk := range k.Subkeys() {
			fmt.Fprintf(st.stdout, "  subkey  %s\n", sk)
		}
	}
	if enc.SignerFingerprint != "" {
		fmt.Fprintf(st.stdout, "\nsigner_fingerprint %s\n", enc.SignerFingerprint)
	}
	return nil
}

// keyImportFlags returns the flag set of key import, bound to the given value.
func keyImportFlags(to *string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("key import", pflag.ContinueOnError)
	fs.StringVar(to, "to", "", "where to store the key")
	return fs
}

// keyFingerprintFlags returns the flag set of key fingerprint (no flags).
func keyFingerprintFlags() *pflag.FlagSet {
	return pflag.NewFlagSet("key fingerprint", pflag.ContinueOnError)
}

// keyListFlags returns the flag set of key list, bound to the given value.
func keyListFlags(config *string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("key list", pflag.ContinueOnError)
	fs.StringVarP(config, "config", "c", defaultConfigPath, "config file")
	return fs
}
