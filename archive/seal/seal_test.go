package seal

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"
)

// keyFiles are generated once per test binary: host (the signer), admin (an
// offline recipient), and other (a stranger).
type keyFiles struct{ pub, sec, fpr string }

var (
	fixtureOnce sync.Once
	fixtureDir  string
	host, admin keyFiles
	other       keyFiles
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureDir != "" {
		os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}

func fixtures(t testing.TB) {
	t.Helper()
	fixtureOnce.Do(func() {
		dir, err := os.MkdirTemp("", "seal-test-")
		if err != nil {
			panic(err)
		}
		fixtureDir = dir
		host = makeKey(dir, "host")
		admin = makeKey(dir, "admin")
		other = makeKey(dir, "other")
	})
	if fixtureDir == "" {
		t.Fatal("fixtures failed")
	}
}

func makeKey(dir, name string) keyFiles {
	k, err := GenerateKey(name, name+"@example.invalid")
	if err != nil {
		panic(err)
	}
	kf := keyFiles{filepath.Join(dir, name+".pub.asc"), filepath.Join(dir, name+".sec.asc"), k.Fingerprint()}
	if err := k.SaveFiles(kf.pub, kf.sec, nil); err != nil {
		panic(err)
	}
	return kf
}

func hostBox(t testing.TB) *Box {
	t.Helper()
	fixtures(t)
	b, err := New(Config{Recipients: []string{admin.pub}, SigningKey: host.sec})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func seal(t testing.TB, b *Box, plain []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := b.Seal(&out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// open reads the whole object; it returns the plaintext and the error that
// replaced io.EOF (nil when verified).
func open(b *Box, sealed []byte) ([]byte, error) {
	r, err := b.Open(bytes.NewReader(sealed))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func randomBytes(n int) []byte {
	p := make([]byte, n)
	rand.Read(p)
	return p
}

func TestRoundTrip(t *testing.T) {
	b := hostBox(t)
	for _, n := range []int{0, 1, 100, 64 << 10, 3<<20 + 7} {
		plain := randomBytes(n)
		got, err := open(b, seal(t, b, plain))
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("%d bytes: plaintext differs", n)
		}
	}
	if b.SignerFingerprint() != host.fpr || len(host.fpr) != 40 {
		t.Fatalf("SignerFingerprint = %q, want %q", b.SignerFingerprint(), host.fpr)
	}
}

// The offline admin key opens the host's objects, checking the host's
// signature, without the host's secret key.
func TestOpenWithAdminKey(t *testing.T) {
	b := hostBox(t)
	sealed := seal(t, b, []byte("payload"))
	ab, err := New(Config{Recipients: []string{host.pub}, DecryptionKeys: []string{admin.sec}, SignerFingerprint: host.fpr})
	if err != nil {
		t.Fatal(err)
	}
	got, err := open(ab, sealed)
	if err != nil || string(got) != "payload" {
		t.Fatalf("admin open: %q, %v", got, err)
	}
	if _, err := ab.Seal(io.Discard); err == nil {
		t.Fatal("a box without signing_key sealed")
	}
}

func TestTamper(t *testing.T) {
	b := hostBox(t)
	plain := randomBytes(200 << 10)
	sealed := seal(t, b, plain)
	flip := func(i int) []byte {
		c := bytes.Clone(sealed)
		c[i] ^= 0x10
		return c
	}
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"flip in key packet", flip(20), ErrCorrupt},
		{"flip early in data", flip(400), ErrCorrupt},
		{"flip in middle", flip(len(sealed) / 2), ErrCorrupt},
		{"flip last byte", flip(len(sealed) - 1), ErrCorrupt},
		{"truncated by 1", sealed[:len(sealed)-1], ErrCorrupt},
		{"truncated by 100", sealed[:len(sealed)-100], ErrCorrupt},
		{"truncated to half", sealed[:len(sealed)/2], ErrCorrupt},
		{"truncated in header", sealed[:30], ErrCorrupt},
		{"empty", nil, ErrCorrupt},
		{"garbage", randomBytes(1000), ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := open(b, tt.data)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			t.Log(err)
		})
	}
}

func TestWrongSigner(t *testing.T) {
	b := hostBox(t)
	// admin is a known key (a recipient) but not the expected signer.
	byAdmin, err := New(Config{Recipients: []string{host.pub}, SigningKey: admin.sec})
	if err != nil {
		t.Fatal(err)
	}
	_, err = open(b, seal(t, byAdmin, []byte("x")))
	if !errors.Is(err, ErrWrongSigner) || !strings.Contains(err.Error(), admin.fpr) || !strings.Contains(err.Error(), host.fpr) {
		t.Fatalf("re-signed by admin: %v", err)
	}
	// other is not in our keyring at all.
	byOther, err := New(Config{Recipients: []string{host.pub}, SigningKey: other.sec})
	if err != nil {
		t.Fatal(err)
	}
	_, err = open(b, seal(t, byOther, []byte("x")))
	if !errors.Is(err, ErrWrongSigner) || !strings.Contains(err.Error(), "unknown key") {
		t.Fatalf("unknown signer: %v", err)
	}
	t.Log(err)
}

func TestUnsigned(t *testing.T) {
	b := hostBox(t)
	var out bytes.Buffer
	w, err := openpgp.EncryptWithParams(&out, b.recipients, nil, &openpgp.EncryptParams{Config: b.cfg})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("not signed"))
	w.Close()
	_, err = open(b, out.Bytes())
	if !errors.Is(err, ErrWrongSigner) || !strings.Contains(err.Error(), "not signed") {
		t.Fatalf("unsigned: %v", err)
	}
}

// A signature by the right key over different content, inside an intact
// encrypted packet: go-crypto reports this only in SignatureError.
func TestBadSignatureValidMDC(t *testing.T) {
	b := hostBox(t)
	var sig bytes.Buffer
	if err := openpgp.DetachSign(&sig, []*openpgp.Entity{b.signer}, strings.NewReader("other content"), b.cfg); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w, err := openpgp.EncryptWithParams(&out, b.recipients, nil, &openpgp.EncryptParams{Config: b.cfg, OutsideSig: sig.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("the content"))
	w.Close()
	got, err := open(b, out.Bytes())
	if !errors.Is(err, ErrBadSignature) {
		t.Fatalf("bad signature: %v", err)
	}
	if string(got) != "the content" {
		t.Fatalf("plaintext %q", got)
	}
	t.Log(err)
}

// TestWrongDecryptionKey: a wrong-key error names the object's keys by
// primary fingerprint and the key file that holds them, and the secret
// keys configured, never bare subkey ids.
func TestWrongDecryptionKey(t *testing.T) {
	fixtures(t)
	// other seals to admin (and itself); host cannot decrypt.
	byOther, err := New(Config{SigningKey: other.sec, Recipients: []string{admin.pub}})
	if err != nil {
		t.Fatal(err)
	}
	sealed := seal(t, byOther, []byte("x"))
	// The opener knows admin's public key only.
	ob, err := New(Config{SigningKey: host.sec, Recipients: []string{admin.pub}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = open(ob, sealed)
	if !errors.Is(err, ErrWrongKey) {
		t.Fatalf("wrong key: %v", err)
	}
	for _, want := range []string{
		"key " + admin.fpr + " (" + admin.pub + "), whose secret key is not configured: add its secret key file to decryption_keys",
		"which no configured key file holds",
		"the secret keys configured are " + host.fpr + " (" + host.sec + ")",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("wrong key: %v\nwant %q", err, want)
		}
	}
}

func TestProtectedKey(t *testing.T) {
	fixtures(t)
	dir := t.TempDir()
	k, err := GenerateKey("prot", "")
	if err != nil {
		t.Fatal(err)
	}
	pub, sec := filepath.Join(dir, "p.pub"), filepath.Join(dir, "p.sec")
	secret := "correct horse battery staple"
	if err := k.SaveFiles(pub, sec, []byte(secret)); err != nil {
		t.Fatal(err)
	}
	passFile := func(content string) string {
		p := filepath.Join(dir, "pass")
		os.Remove(p)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv(PassphraseEnv, "")
	if _, err := New(Config{SigningKey: sec}); err == nil || !strings.Contains(err.Error(), "passphrase-protected") {
		t.Fatalf("no passphrase: %v", err)
	}
	_, err = New(Config{SigningKey: sec, PassphraseFile: passFile("wrong\n")})
	if !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if strings.Contains(err.Error(), "wrong\n") || strings.Contains(err.Error(), secret) {
		t.Fatalf("error shows the passphrase: %v", err)
	}
	b, err := New(Config{SigningKey: sec, PassphraseFile: passFile(secret + "\n")})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := open(b, seal(t, b, []byte("hi"))); err != nil || string(got) != "hi" {
		t.Fatalf("protected key round trip: %q %v", got, err)
	}
	t.Setenv(PassphraseEnv, secret)
	if _, err := New(Config{SigningKey: sec}); err != nil {
		t.Fatalf("passphrase from env: %v", err)
	}
}

func TestInsecureFiles(t *testing.T) {
	fixtures(t)
	dir := t.TempDir()
	data, err := os.ReadFile(host.sec)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		p := filepath.Join(dir, "sec")
		os.Remove(p)
		os.WriteFile(p, data, 0o600)
		os.Chmod(p, mode)
		_, err := New(Config{SigningKey: p})
		if !errors.Is(err, ErrInsecureFile) || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("mode %o: %v", mode, err)
		}
		// A secret key given as a recipient is refused too.
		if _, err := New(Config{SigningKey: host.sec, Recipients: []string{p}}); !errors.Is(err, ErrInsecureFile) {
			t.Fatalf("recipient mode %o: %v", mode, err)
		}
	}
	p := filepath.Join(dir, "pass")
	os.WriteFile(p, []byte("secret\n"), 0o644)
	os.Chmod(p, 0o644)
	if _, err := New(Config{Mode: ModePassphrase, PassphraseFile: p}); !errors.Is(err, ErrInsecureFile) {
		t.Fatalf("passphrase file 0644: %v", err)
	}
	if fi, _ := os.Stat(host.sec); fi.Mode().Perm() != 0o600 {
		t.Fatalf("SaveFiles wrote mode %o", fi.Mode().Perm())
	}
}

func TestPassphraseMode(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pass")
	os.WriteFile(p, []byte("s3cret\n"), 0o600)
	b, err := New(Config{Mode: ModePassphrase, PassphraseFile: p})
	if err != nil {
		t.Fatal(err)
	}
	sealed := seal(t, b, []byte("small setup"))
	if got, err := open(b, sealed); err != nil || string(got) != "small setup" {
		t.Fatalf("round trip: %q %v", got, err)
	}
	os.WriteFile(p, []byte("other\n"), 0o600)
	wrong, err := New(Config{Mode: ModePassphrase, PassphraseFile: p})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open(wrong, sealed); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	c := bytes.Clone(sealed)
	c[len(c)-5] ^= 1
	if _, err := open(b, c); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("flipped: %v", err)
	}
	// An object sealed to keys does not open in passphrase mode, and back.
	hb := hostBox(t)
	if _, err := open(b, seal(t, hb, []byte("x"))); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("key object in passphrase mode: %v", err)
	}
	if _, err := open(hb, sealed); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("passphrase object in key mode: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	fixtures(t)
	t.Setenv(PassphraseEnv, "")
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"empty", Config{}, "no keys configured"},
		{"bad mode", Config{Mode: "rot13"}, "unknown mode"},
		{"passphrase without one", Config{Mode: ModePassphrase}, "needs passphrase_file"},
		{"passphrase with keys", Config{Mode: ModePassphrase, SigningKey: host.sec}, "no keys"},
		{"only recipients", Config{Recipients: []string{host.pub}}, "set signing_key"},
		{"pin mismatch", Config{SigningKey: host.sec, SignerFingerprint: admin.fpr}, "is not the signing_key"},
		{"pin unknown", Config{DecryptionKeys: []string{admin.sec}, SignerFingerprint: other.fpr}, "matches none"},
		{"public as signing key", Config{SigningKey: host.pub}, "not a secret key"},
		{"missing file", Config{SigningKey: "/nonexistent/key"}, "no such file"},
		{"not a key", Config{SigningKey: "/etc/hostname"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			t.Log(err)
		})
	}
	// A pin written with spaces and lower case is the same key.
	spaced := strings.ToLower(host.fpr[:4] + " " + host.fpr[4:])
	if _, err := New(Config{SigningKey: host.sec, SignerFingerprint: spaced}); err != nil {
		t.Fatal(err)
	}
}

func TestDetached(t *testing.T) {
	b := hostBox(t)
	data := randomBytes(100 << 10)
	var sig bytes.Buffer
	if err := b.SignDetached(&sig, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sig.String(), "-----BEGIN PGP SIGNATURE-----") {
		t.Fatalf("not armored: %.40q", sig.String())
	}
	if err := b.VerifyDetached(bytes.NewReader(sig.Bytes()), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(data)
	bad[5000] ^= 1
	if err := b.VerifyDetached(bytes.NewReader(sig.Bytes()), bytes.NewReader(bad)); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("flipped data: %v", err)
	}
	adminBox, err := New(Config{SigningKey: admin.sec, Recipients: []string{host.pub}})
	if err != nil {
		t.Fatal(err)
	}
	var asig bytes.Buffer
	adminBox.SignDetached(&asig, bytes.NewReader(data))
	if err := b.VerifyDetached(&asig, bytes.NewReader(data)); !errors.Is(err, ErrWrongSigner) {
		t.Fatalf("signed by admin: %v", err)
	}
	otherBox, _ := New(Config{SigningKey: other.sec})
	var osig bytes.Buffer
	otherBox.SignDetached(&osig, bytes.NewReader(data))
	if err := b.VerifyDetached(&osig, bytes.NewReader(data)); !errors.Is(err, ErrWrongSigner) {
		t.Fatalf("signed by stranger: %v", err)
	}
}

func TestConcurrent(t *testing.T) {
	b := hostBox(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			plain := randomBytes(100<<10 + i)
			var out bytes.Buffer
			w, err := b.Seal(&out)
			if err != nil {
				errs <- err
				return
			}
			w.Write(plain)
			if err := w.Close(); err != nil {
				errs <- err
				return
			}
			got, err := open(b, out.Bytes())
			if err != nil || !bytes.Equal(got, plain) {
				errs <- errors.Join(err, errors.New("round trip differs"))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// The reader must not return io.EOF for a damaged object even when the
// caller reads in tiny pieces, and must keep returning the error.
func TestErrorIsSticky(t *testing.T) {
	b := hostBox(t)
	sealed := seal(t, b, randomBytes(10000))
	sealed[len(sealed)-3] ^= 1
	r, err := b.Open(bytes.NewReader(sealed))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	for {
		_, err = r.Read(buf)
		if err != nil {
			break
		}
	}
	if err == io.EOF {
		t.Fatal("damaged object read to io.EOF")
	}
	if _, err2 := r.Read(buf); err2 != err {
		t.Fatalf("second read: %v, first: %v", err2, err)
	}
}

func TestOpenTo(t *testing.T) {
	b := hostBox(t)
	dir := t.TempDir()
	plain := randomBytes(300 << 10)
	sealed := seal(t, b, plain)
	target := filepath.Join(dir, "manifest")
	if err := b.OpenTo(bytes.NewReader(sealed), target, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(target); !bytes.Equal(got, plain) {
		t.Fatal("content differs")
	}
	bad := bytes.Clone(sealed)
	bad[len(bad)/2] ^= 4
	target2 := filepath.Join(dir, "damaged")
	if err := b.OpenTo(bytes.NewReader(bad), target2, 0o600); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "manifest" {
		t.Fatalf("left behind: %v", entries)
	}
}

// A signed but unencrypted message by the right key is not a sealed object.
func TestPlaintextRejected(t *testing.T) {
	b := hostBox(t)
	var out bytes.Buffer
	w, err := openpgp.Sign(&out, []*openpgp.Entity{b.signer}, nil, b.cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("in the clear"))
	w.Close()
	if _, err := open(b, out.Bytes()); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "not encrypted") {
		t.Fatalf("plaintext message: %v", err)
	}
}

// Memory stays flat in the object's size, also when the caller writes in
// big pieces: 256 MiB sealed in 4 MiB writes keeps the heap small.
func TestSealStreams(t *testing.T) {
	if testing.Short() {
		// Not a missing component: 256 MiB is slow for -short.
		t.Skip("seals 256 MiB")
	}
	b := hostBox(t)
	w, err := b.Seal(io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	chunk := randomBytes(4 << 20)
	var maxHeap uint64
	var ms runtime.MemStats
	for i := range 64 {
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
		if i%8 == 0 {
			runtime.ReadMemStats(&ms)
			maxHeap = max(maxHeap, ms.HeapInuse)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if maxHeap > 48<<20 {
		t.Fatalf("heap in use reached %d MiB while sealing", maxHeap>>20)
	}
	t.Logf("max heap in use %.1f MiB", float64(maxHeap)/(1<<20))
}

// A recipient key that advertises SEIPDv2 (AEAD) still gets SEIPDv1, which
// GnuPG 2.2 reads.
func TestSEIPDv1ForAEADKeys(t *testing.T) {
	fixtures(t)
	cfg := packetConfig()
	cfg.AEADConfig = &packet.AEADConfig{DefaultMode: packet.AEADModeOCB}
	e, err := openpgp.NewEntity("aead", "", "", cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Every recipient must advertise SEIPDv2 for go-crypto to use it, so
	// the AEAD key is the signing key and the only recipient.
	sec := filepath.Join(t.TempDir(), "aead.sec")
	f, _ := os.OpenFile(sec, os.O_CREATE|os.O_WRONLY, 0o600)
	if err := e.SerializePrivateWithoutSigning(f, nil); err != nil {
		t.Fatal(err)
	}
	f.Close()
	b, err := New(Config{SigningKey: sec})
	if err != nil {
		t.Fatal(err)
	}
	sealed := seal(t, b, []byte("x"))
	pr := packet.NewReader(bytes.NewReader(sealed))
	for {
		p, err := pr.Next()
		if err != nil {
			t.Fatalf("no encrypted data packet: %v", err)
		}
		switch p := p.(type) {
		case *packet.EncryptedKey:
			if p.Version != 3 {
				t.Fatalf("PKESK version %d, want 3", p.Version)
			}
			continue
		case *packet.SymmetricallyEncrypted:
			if p.Version != 1 || !p.IntegrityProtected {
				t.Fatalf("SEIPD version %d, want 1 with MDC", p.Version)
			}
			return
		default:
			t.Fatalf("unexpected packet %T", p)
		}
	}
}

// We never compress inside OpenPGP, so a compressed packet is refused
// rather than inflated (no decompression bombs).
func TestCompressedRefused(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(p, []byte("pw\n"), 0o600)
	b, err := New(Config{Mode: ModePassphrase, PassphraseFile: p})
	if err != nil {
		t.Fatal(err)
	}
	cfg := packetConfig()
	cfg.DefaultCompressionAlgo = packet.CompressionZLIB
	var out bytes.Buffer
	w, err := openpgp.SymmetricallyEncrypt(&out, []byte("pw"), nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(bytes.Repeat([]byte("a"), 1<<20))
	w.Close()
	got, err := open(b, out.Bytes())
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("compressed message: %v (%d bytes)", err, len(got))
	}
	t.Log(err)
}
