package seal

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpen feeds untrusted bytes (what a remote server returns) to Open.
// It must never panic, and whatever it verifies must be the content the
// host signed.
func FuzzOpen(f *testing.F) {
	b := hostBox(f)
	plain := []byte("the content the host signed, long enough to span a few blocks of AES")
	sealed := seal(f, b, plain)
	f.Add(sealed)
	f.Add(sealed[:len(sealed)/2])
	f.Add([]byte{})
	dir := f.TempDir()
	p := filepath.Join(dir, "pass")
	os.WriteFile(p, []byte("pw\n"), 0o600)
	pb, err := New(Config{Mode: ModePassphrase, PassphraseFile: p})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seal(f, pb, plain))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := b.Open(bytes.NewReader(data))
		if err != nil {
			return
		}
		got, err := io.ReadAll(io.LimitReader(r, 1<<20))
		if err == nil && !bytes.Equal(got, plain) {
			t.Fatalf("verified content that the host did not sign: %q", got)
		}
	})
}

// FuzzVerifyDetached feeds untrusted signatures to VerifyDetached.
func FuzzVerifyDetached(f *testing.F) {
	b := hostBox(f)
	data := []byte("#!/bin/sh\necho recover\n")
	var sig bytes.Buffer
	if err := b.SignDetached(&sig, bytes.NewReader(data)); err != nil {
		f.Fatal(err)
	}
	f.Add(sig.Bytes(), data)
	f.Add(sig.Bytes(), []byte("other"))
	f.Fuzz(func(t *testing.T, sig, signed []byte) {
		err := b.VerifyDetached(bytes.NewReader(sig), bytes.NewReader(signed))
		if err == nil && !bytes.Equal(signed, data) {
			t.Fatalf("verified data that the host did not sign: %q", signed)
		}
	})
}

// FuzzParseKeys feeds arbitrary bytes to the key file parser.
func FuzzParseKeys(f *testing.F) {
	fixtures(f)
	for _, p := range []string{host.pub, host.sec} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ents, err := parseKeys(data)
		if err == nil && len(ents) == 0 {
			t.Fatal("no error and no key")
		}
	})
}
