package seal

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backtory/backtory/internal/testenv"
)

// Interop with real GnuPG (test/deps/gnupg.sh installs it).

// needGPG skips the test when gpg is missing, or fails it under
// BACKTORY_TEST_STRICT.
func needGPG(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"gpg", "gpg-agent", "gpgconf"} {
		testenv.NeedTool(t, tool)
	}
}

// gpgHome is a throw-away GnuPG home; its agent is stopped at cleanup.
type gpgHome struct {
	t        *testing.T
	dir      string
	passFile string // passphrase for keys made here; never on the command line
}

func newGPGHome(t *testing.T) *gpgHome {
	t.Helper()
	needGPG(t)
	dir, err := os.MkdirTemp("", "gpg") // short path: the agent socket has a length limit
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o700)
	g := &gpgHome{t: t, dir: dir, passFile: filepath.Join(dir, "pass")}
	if err := os.WriteFile(g.passFile, []byte("gpg test passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "gpg-agent.conf"), []byte("allow-loopback-pinentry\n"), 0o600)
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", dir, "--kill", "gpg-agent").Run()
		os.RemoveAll(dir)
	})
	return g
}

// run runs gpg with stdin and returns stdout; status lines go to the
// returned status string. It fails the test when gpg fails, unless
// allowFail is set.
func (g *gpgHome) run(stdin []byte, allowFail bool, args ...string) (stdout []byte, status string, err error) {
	g.t.Helper()
	base := []string{"--homedir", g.dir, "--batch", "--no-tty", "--status-fd", "2",
		"--pinentry-mode", "loopback", "--passphrase-file", g.passFile}
	cmd := exec.Command("gpg", append(base, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if err != nil && !allowFail {
		g.t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes(), errb.String(), err
}

// genKey makes a passphrase-protected key with an encryption subkey and
// returns its fingerprint.
func (g *gpgHome) genKey(uid, algo, encAlgo string) string {
	g.run(nil, false, "--quick-gen-key", uid, algo, "sign", "0")
	out, _, _ := g.run(nil, false, "--with-colons", "--list-keys", uid)
	var fpr string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if f := strings.Split(sc.Text(), ":"); f[0] == "fpr" {
			fpr = f[9]
			break
		}
	}
	if fpr == "" {
		g.t.Fatalf("no fingerprint for %s in\n%s", uid, out)
	}
	g.run(nil, false, "--quick-add-key", fpr, encAlgo, "encr", "0")
	return fpr
}

// export writes the public and the secret key (mode 0600) of fpr to dir.
func (g *gpgHome) export(fpr, dir string) (pub, sec string) {
	p, _, _ := g.run(nil, false, "--armor", "--export", fpr)
	s, _, _ := g.run(nil, false, "--armor", "--export-secret-keys", fpr)
	pub, sec = filepath.Join(dir, fpr+".pub.asc"), filepath.Join(dir, fpr+".sec.asc")
	if err := os.WriteFile(pub, p, 0o644); err != nil {
		g.t.Fatal(err)
	}
	if err := os.WriteFile(sec, s, 0o600); err != nil {
		g.t.Fatal(err)
	}
	return pub, sec
}

func (g *gpgHome) importFile(path string) { g.run(nil, false, "--import", path) }

// TestGnuPGKeys: keys made by gpg (ed25519/cv25519 and rsa4096 with an
// encryption subkey, passphrase-protected) work as our signing key and
// recipients, and gpg decrypts what we seal with GOODSIG.
func TestGnuPGKeys(t *testing.T) {
	g := newGPGHome(t)
	dir := t.TempDir()
	edFpr := g.genKey("Ed Host <ed@example.invalid>", "ed25519", "cv25519")
	rsaFpr := g.genKey("RSA Admin <rsa@example.invalid>", "rsa4096", "rsa4096")
	edPub, edSec := g.export(edFpr, dir)
	rsaPub, rsaSec := g.export(rsaFpr, dir)

	for _, tc := range []struct {
		name              string
		signer, recipient string
		signerFpr         string
	}{
		{"ed25519 signer", edSec, rsaPub, edFpr},
		{"rsa4096 signer", rsaSec, edPub, rsaFpr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := New(Config{SigningKey: tc.signer, Recipients: []string{tc.recipient}, PassphraseFile: g.passFile})
			if err != nil {
				t.Fatal(err)
			}
			if b.SignerFingerprint() != tc.signerFpr {
				t.Fatalf("fingerprint %s, gpg says %s", b.SignerFingerprint(), tc.signerFpr)
			}
			plain := randomBytes(300 << 10)
			sealed := seal(t, b, plain)
			out, status, _ := g.run(sealed, false, "--decrypt")
			if !bytes.Equal(out, plain) {
				t.Fatal("gpg's plaintext differs")
			}
			for _, want := range []string{"GOODSIG", "VALIDSIG " + tc.signerFpr, "DECRYPTION_OKAY", "GOODMDC", "DECRYPTION_INFO 2 9 0"} {
				if !strings.Contains(status, want) {
					t.Errorf("gpg status lacks %q:\n%s", want, status)
				}
			}
			got, err := open(b, sealed)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("our open: %v", err)
			}
		})
	}

	// gpg seals (no compression) with either key; we verify the pinned signer.
	for _, tc := range []struct{ name, signer, opener string }{
		{"gpg ed25519 signs", edFpr, rsaSec},
		{"gpg rsa4096 signs", rsaFpr, edSec},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sealed, _, _ := g.run([]byte("made by gpg"), false, "-z", "0", "--encrypt", "--sign",
				"--trust-model", "always", "-u", tc.signer, "-r", edFpr, "-r", rsaFpr)
			b, err := New(Config{DecryptionKeys: []string{tc.opener}, Recipients: []string{edPub, rsaPub},
				SignerFingerprint: tc.signer, PassphraseFile: g.passFile})
			if err != nil {
				t.Fatal(err)
			}
			got, err := open(b, sealed)
			if err != nil || string(got) != "made by gpg" {
				t.Fatalf("open gpg's message: %q %v", got, err)
			}
		})
	}
}

// TestGnuPGReadsOurKeys: a key from GenerateKey (passphrase-protected)
// imports into gpg, gpg decrypts our objects with it and checks detached
// signatures; the message has the settings we promise.
func TestGnuPGReadsOurKeys(t *testing.T) {
	g := newGPGHome(t)
	dir := t.TempDir()
	k, err := GenerateKey("Backtory Host", "host@example.invalid")
	if err != nil {
		t.Fatal(err)
	}
	pub, sec := filepath.Join(dir, "host.pub.asc"), filepath.Join(dir, "host.sec.asc")
	if err := k.SaveFiles(pub, sec, []byte("gpg test passphrase")); err != nil {
		t.Fatal(err)
	}
	g.importFile(sec)
	out, _, _ := g.run(nil, false, "--with-colons", "--list-secret-keys", k.Fingerprint())
	if !strings.Contains(string(out), ":ed25519:") || !strings.Contains(string(out), ":cv25519:") {
		t.Fatalf("gpg sees other algorithms:\n%s", out)
	}

	b, err := New(Config{SigningKey: sec, PassphraseFile: g.passFile})
	if err != nil {
		t.Fatal(err)
	}
	plain := randomBytes(100 << 10)
	sealed := seal(t, b, plain)
	got, status, _ := g.run(sealed, false, "--decrypt")
	if !bytes.Equal(got, plain) || !strings.Contains(status, "GOODSIG") || !strings.Contains(status, "VALIDSIG "+k.Fingerprint()) {
		t.Fatalf("gpg decrypt of our object:\n%s", status)
	}
	packets, _, _ := g.run(sealed, false, "--list-packets")
	if bytes.Contains(packets, []byte("compressed packet")) || !bytes.Contains(packets, []byte("mdc_method: 2")) {
		t.Fatalf("unexpected packets:\n%s", packets)
	}

	// Detached signature, and a tampered copy.
	data := filepath.Join(dir, "recover.sh")
	os.WriteFile(data, []byte("#!/bin/sh\necho recover\n"), 0o644)
	f, _ := os.Open(data)
	var sig bytes.Buffer
	err = b.SignDetached(&sig, f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	sigFile := data + ".asc"
	os.WriteFile(sigFile, sig.Bytes(), 0o644)
	if _, status, _ := g.run(nil, false, "--verify", sigFile, data); !strings.Contains(status, "GOODSIG") {
		t.Fatalf("gpg --verify:\n%s", status)
	}
	os.WriteFile(data, []byte("#!/bin/sh\necho evil\n"), 0o644)
	if _, status, err := g.run(nil, true, "--verify", sigFile, data); err == nil || !strings.Contains(status, "BADSIG") {
		t.Fatalf("gpg accepted a tampered file:\n%s", status)
	}

	// gpg's detached signature verifies with VerifyDetached.
	gsig, _, _ := g.run(nil, false, "--armor", "--detach-sign", "-u", k.Fingerprint(), "-o", "-", data)
	df, _ := os.ReadFile(data)
	if err := b.VerifyDetached(bytes.NewReader(gsig), bytes.NewReader(df)); err != nil {
		t.Fatalf("verify gpg's signature: %v", err)
	}
	if err := b.VerifyDetached(bytes.NewReader(gsig), strings.NewReader("other")); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("gpg signature over other data: %v", err)
	}
}

// TestGnuPGPassphraseMode: gpg decrypts passphrase-mode objects, and we
// open gpg's `-c -z 0` output.
func TestGnuPGPassphraseMode(t *testing.T) {
	g := newGPGHome(t)
	b, err := New(Config{Mode: ModePassphrase, PassphraseFile: g.passFile})
	if err != nil {
		t.Fatal(err)
	}
	plain := randomBytes(50 << 10)
	got, status, _ := g.run(seal(t, b, plain), false, "--decrypt")
	if !bytes.Equal(got, plain) || !strings.Contains(status, "DECRYPTION_OKAY") {
		t.Fatalf("gpg decrypt:\n%s", status)
	}
	sym, _, _ := g.run([]byte("from gpg"), false, "-z", "0", "--symmetric", "--cipher-algo", "AES256")
	if got, err := open(b, sym); err != nil || string(got) != "from gpg" {
		t.Fatalf("open gpg -c: %q %v", got, err)
	}
}
