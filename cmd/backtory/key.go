package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"github.com/backtory/backtory/archive/seal"
)

func init() {
	register(command{
		name:    "key",
		summary: "OpenPGP keys: generate, export, import, fingerprint",
		run: func(_ context.Context, st streams, args []string) error {
			return keyCommand(st, args)
		},
	})
}

const keyUsage = `usage:
  backtory key generate --name NAME [--email EMAIL] --public FILE --secret FILE [--passphrase-file FILE]
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
	case "-h", "--help", "help":
		fmt.Fprintln(st.stdout, keyUsage)
		return nil
	}
	return usagef("key: unknown subcommand %q\n%s", sub, keyUsage)
}

func keyGenerate(st streams, args []string) error {
	fs := pflag.NewFlagSet("key generate", pflag.ContinueOnError)
	name := fs.String("name", "", "user ID name, e.g. \"backtory web1\"")
	email := fs.String("email", "", "user ID email (optional)")
	pub := fs.String("public", "", "where to write the public key (armored)")
	sec := fs.String("secret", "", "where to write the secret key (armored, mode 0600)")
	passFile := fs.String("passphrase-file", "", "protect the secret key with the passphrase in this file")
	if err := st.parseFlags(fs, args); err != nil {
		return err
	}
	if *name == "" || *pub == "" || *sec == "" || fs.NArg() > 0 {
		return usagef("key generate: needs --name, --public and --secret\n%s", keyUsage)
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

func keyExport(st streams, args []string) error {
	fs := pflag.NewFlagSet("key export", pflag.ContinueOnError)
	sec := fs.String("secret", "", "the secret key file")
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
	fs := pflag.NewFlagSet("key import", pflag.ContinueOnError)
	to := fs.String("to", "", "where to store the key")
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
	fs := pflag.NewFlagSet("key fingerprint", pflag.ContinueOnError)
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
