package seal

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/ProtonMail/go-crypto/openpgp/s2k"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"
)

// Key is an OpenPGP key (public, or public and secret) loaded from a file or
// freshly generated.
type Key struct {
	entity *openpgp.Entity
}

// GenerateKey makes a new host key that GnuPG 2.2 reads: a v4 Ed25519
// signing primary key with a Curve25519 encryption subkey, preferring
// AES-256 and SHA-256, no compression, no AEAD, no expiry. The user ID is
// "name <email>" (email may be empty).
func GenerateKey(name, email string) (*Key, error) {
	if strings.ContainsAny(name+email, "()<>\x00") {
		return nil, fmt.Errorf("generate key: name and email must not contain ( ) < >")
	}
	e, err := openpgp.NewEntity(name, "", email, packetConfig())
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return &Key{entity: e}, nil
}

// ReadKeyFile reads the first key of an armored or binary key file. If the
// file holds a secret key, its permissions must not give access to group or
// others (ErrInsecureFile); the secret key stays locked.
func ReadKeyFile(path string) (*Key, error) {
	ents, err := readKeyFile(path, false)
	if err != nil {
		return nil, err
	}
	return &Key{entity: ents[0]}, nil
}

// ImportKey checks that data (armored or binary, as `gpg --export` or
// `gpg --export-secret-keys` writes it) is one v4 key that can encrypt and
// sign, and writes it unchanged to path: mode 0600 for a secret key, 0644
// for a public one. It never overwrites a file.
func ImportKey(data []byte, path string) (*Key, error) {
	ents, err := parseKeys(data)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if len(ents) != 1 {
		return nil, fmt.Errorf("import: found %d keys, want exactly one", len(ents))
	}
	e := ents[0]
	if e.PrimaryKey.Version != 4 {
		return nil, fmt.Errorf("import: key %s is a v%d key; GnuPG 2.2 reads only v4 keys",
			fingerprint(e.PrimaryKey.Fingerprint), e.PrimaryKey.Version)
	}
	cfg := packetConfig()
	if _, err := e.EncryptionKeyWithError(time.Now(), cfg); err != nil {
		return nil, fmt.Errorf("import: key %s has no usable encryption key (add one: gpg --quick-add-key FPR cv25519 encr): %w",
			fingerprint(e.PrimaryKey.Fingerprint), err)
	}
	mode := os.FileMode(0o644)
	if e.PrivateKey != nil {
		mode = 0o600
	}
	if err := writeNewFile(path, data, mode); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	return &Key{entity: e}, nil
}

// Fingerprint returns the primary key's fingerprint, 40 upper-case hex digits.
func (k *Key) Fingerprint() string { return fingerprint(k.entity.PrimaryKey.Fingerprint) }

// Subkeys returns the fingerprints of the key's subkeys, each with what it
// may do ("encrypt", "sign").
func (k *Key) Subkeys() []string {
	var out []string
	for _, sk := range k.entity.Subkeys {
		use := "not valid now"
		if sig, err := sk.Verify(time.Now(), packetConfig()); err == nil && sig.FlagsValid {
			var u []string
			if sig.FlagEncryptCommunications || sig.FlagEncryptStorage {
				u = append(u, "encrypt")
			}
			if sig.FlagSign {
				u = append(u, "sign")
			}
			use = strings.Join(u, ",")
		}
		out = append(out, fingerprint(sk.PublicKey.Fingerprint)+" "+use)
	}
	return out
}

// UserID returns the key's primary user ID, or "".
func (k *Key) UserID() string {
	if _, id := k.entity.PrimaryIdentity(time.Now(), packetConfig()); id != nil {
		return id.Name
	}
	return ""
}

// HasSecret reports whether the key includes its secret part.
func (k *Key) HasSecret() bool { return k.entity.PrivateKey != nil }

// WritePublic writes the armored public key to w.
func (k *Key) WritePublic(w io.Writer) error { return writeArmoredPublic(w, k.entity) }

// WriteSecret writes the armored secret key to w, protected by passphrase
// with the GnuPG-compatible iterated+salted SHA-256 S2K, or unprotected when
// passphrase is empty. The key must be unlocked (freshly generated).
func (k *Key) WriteSecret(w io.Writer, passphrase []byte) error {
	if k.entity.PrivateKey == nil {
		return errors.New("write secret key: this is a public key")
	}
	if k.entity.PrivateKey.Encrypted {
		return errors.New("write secret key: the key is locked")
	}
	// Serialize a copy, so that protecting it leaves k unlocked.
	var raw bytes.Buffer
	if err := k.entity.SerializePrivateWithoutSigning(&raw, nil); err != nil {
		return fmt.Errorf("write secret key: %w", err)
	}
	e, err := openpgp.ReadEntity(packet.NewReader(&raw))
	if err != nil {
		return fmt.Errorf("write secret key: %w", err)
	}
	if len(passphrase) > 0 {
		if err := e.EncryptPrivateKeys(passphrase, packetConfig()); err != nil {
			return fmt.Errorf("write secret key: protect: %w", err)
		}
	}
	aw, err := armor.Encode(w, openpgp.PrivateKeyType, nil)
	if err != nil {
		return fmt.Errorf("write secret key: %w", err)
	}
	if err := e.SerializePrivateWithoutSigning(aw, nil); err != nil {
		return fmt.Errorf("write secret key: %w", err)
	}
	if err := aw.Close(); err != nil {
		return fmt.Errorf("write secret key: %w", err)
	}
	return nil
}

// SaveFiles writes the public key to publicPath (mode 0644) and the secret
// key to secretPath (mode 0600, protected when passphrase is not empty). It
// refuses to overwrite existing files.
func (k *Key) SaveFiles(publicPath, secretPath string, passphrase []byte) error {
	var sec bytes.Buffer
	if err := k.WriteSecret(&sec, passphrase); err != nil {
		return err
	}
	var pub bytes.Buffer
	if err := k.WritePublic(&pub); err != nil {
		return err
	}
	for _, p := range []string{publicPath, secretPath} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("save key: %s already exists; not overwriting a key", p)
		}
	}
	if err := writeNewFile(secretPath, sec.Bytes(), 0o600); err != nil {
		return fmt.Errorf("save secret key: %w", err)
	}
	if err := writeNewFile(publicPath, pub.Bytes(), 0o644); err != nil {
		return fmt.Errorf("save public key: %w", err)
	}
	return nil
}

// loadKeyMode loads recipients and secret keys and decides the expected signer.
func (b *Box) loadKeyMode(cfg Config) error {
	if cfg.SigningKey == "" && len(cfg.DecryptionKeys) == 0 && len(cfg.Recipients) == 0 {
		return errors.New("encryption: no keys configured: set signing_key and recipients (or mode: passphrase)")
	}
	pass, err := ReadPassphrase(cfg.PassphraseFile)
	if err != nil {
		return fmt.Errorf("encryption: %w", err)
	}
	b.files = map[string]string{}
	add := func(e *openpgp.Entity, path string) {
		fpr := fingerprint(e.PrimaryKey.Fingerprint)
		if b.files[fpr] == "" || e.PrivateKey != nil {
			b.files[fpr] = path
		}
		for i, have := range b.keyring {
			if bytes.Equal(have.PrimaryKey.Fingerprint, e.PrimaryKey.Fingerprint) {
				if e.PrivateKey != nil && have.PrivateKey == nil {
					b.keyring[i] = e // prefer the copy with the secret key
				}
				return
			}
		}
		b.keyring = append(b.keyring, e)
	}
	if cfg.SigningKey != "" {
		e, err := loadSecretKey(cfg.SigningKey, pass)
		if err != nil {
			return fmt.Errorf("encryption: signing_key: %w", err)
		}
		if _, ok := e.SigningKey(time.Now(), b.cfg); !ok {
			return fmt.Errorf("encryption: signing_key %s has no valid signing key (expired or revoked?)", cfg.SigningKey)
		}
		b.signer = e
		add(e, cfg.SigningKey)
	}
	for _, path := range cfg.DecryptionKeys {
		e, err := loadSecretKey(path, pass)
		if err != nil {
			return fmt.Errorf("encryption: decryption_keys: %w", err)
		}
		add(e, path)
	}
	seen := map[string]bool{}
	addRecipient := func(e *openpgp.Entity, path string) error {
		if _, err := e.EncryptionKeyWithError(time.Now(), b.cfg); err != nil {
			return fmt.Errorf("encryption: %s has no usable encryption key (add an encryption subkey): %w", path, err)
		}
		fpr := string(e.PrimaryKey.Fingerprint)
		if !seen[fpr] {
			seen[fpr] = true
			b.recipients = append(b.recipients, e)
		}
		return nil
	}
	if b.signer != nil {
		if err := addRecipient(b.signer, cfg.SigningKey); err != nil {
			return err
		}
	}
	for _, path := range cfg.Recipients {
		ents, err := readKeyFile(path, false)
		if err != nil {
			return fmt.Errorf("encryption: recipients: %w", err)
		}
		for _, e := range ents {
			if err := addRecipient(e, path); err != nil {
				return err
			}
			add(e, path)
		}
	}
	for _, e := range b.keyring {
		gnupg22Compatible(e)
	}
	return b.chooseSigner(cfg)
}

// chooseSigner sets b.expected from SignerFingerprint or the signing key.
func (b *Box) chooseSigner(cfg Config) error {
	if cfg.SignerFingerprint == "" {
		if b.signer == nil {
			return errors.New("encryption: set signing_key, or signer_fingerprint to open objects signed by another key")
		}
		b.expected = b.signer.PrimaryKey.Fingerprint
		return nil
	}
	want := strings.ToUpper(strings.NewReplacer(" ", "", "0x", "", "0X", "").Replace(cfg.SignerFingerprint))
	if b.signer != nil && fingerprint(b.signer.PrimaryKey.Fingerprint) != want {
		return fmt.Errorf("encryption: signer_fingerprint %s is not the signing_key's fingerprint %s",
			want, fingerprint(b.signer.PrimaryKey.Fingerprint))
	}
	for _, e := range b.keyring {
		if fingerprint(e.PrimaryKey.Fingerprint) == want {
			b.expected = e.PrimaryKey.Fingerprint
			return nil
		}
	}
	return fmt.Errorf("encryption: signer_fingerprint %s matches none of the keys in recipients, signing_key or decryption_keys", want)
}

func (b *Box) loadPassphraseMode(cfg Config) error {
	if cfg.SigningKey != "" || len(cfg.Recipients) > 0 || len(cfg.DecryptionKeys) > 0 || cfg.SignerFingerprint != "" {
		return errors.New("encryption: mode passphrase takes only passphrase_file (or " + PassphraseEnv + "), no keys")
	}
	pass, err := ReadPassphrase(cfg.PassphraseFile)
	if err != nil {
		return fmt.Errorf("encryption: %w", err)
	}
	if pass == nil {
		return errors.New("encryption: mode passphrase needs passphrase_file or " + PassphraseEnv)
	}
	b.passphrase = pass
	return nil
}

// packetConfig is the go-crypto configuration whose output GnuPG 2.2 reads:
// v4 keys, Ed25519/Cv25519, AES-256, SHA-256, SEIPDv1 (AEADConfig nil), no
// compression, iterated+salted S2K (not Argon2).
func packetConfig() *packet.Config {
	zero := int64(0)
	return &packet.Config{
		Algorithm:              packet.PubKeyAlgoEdDSA,
		Curve:                  packet.Curve25519,
		V6Keys:                 false,
		DefaultHash:            crypto.SHA256,
		DefaultCipher:          packet.CipherAES256,
		DefaultCompressionAlgo: packet.CompressionNone,
		AEADConfig:             nil,
		S2KConfig: &s2k.Config{
			S2KMode:  s2k.IteratedSaltedS2K,
			Hash:     crypto.SHA256,
			S2KCount: 65011712,
		},
		// We never compress inside OpenPGP (zstd ran before), so a
		// compressed packet cannot be ours: refuse to inflate it.
		MaxDecompressedMessageSize: &zero,
	}
}

// gnupg22Compatible makes go-crypto write SEIPDv1 to this key even if its
// self-signatures advertise SEIPDv2 (which GnuPG 2.2 cannot read). It only
// changes the parsed copy in memory.
func gnupg22Compatible(e *openpgp.Entity) {
	for _, id := range e.Identities {
		for _, s := range id.SelfCertifications {
			s.Packet.SEIPDv2 = false
		}
	}
	for _, s := range e.DirectSignatures {
		s.Packet.SEIPDv2 = false
	}
}

var zeroTime time.Time

// loadSecretKey reads a secret key file and unlocks it with pass.
func loadSecretKey(path string, pass []byte) (*openpgp.Entity, error) {
	ents, err := readKeyFile(path, true)
	if err != nil {
		return nil, err
	}
	e := ents[0]
	if locked(e) {
		if len(pass) == 0 {
			return nil, fmt.Errorf("secret key %s is passphrase-protected: set passphrase_file or %s", path, PassphraseEnv)
		}
		if err := e.DecryptPrivateKeys(pass); err != nil {
			return nil, fmt.Errorf("%w for secret key %s", ErrWrongPassphrase, path)
		}
	}
	return e, nil
}

func locked(e *openpgp.Entity) bool {
	if e.PrivateKey != nil && e.PrivateKey.Encrypted {
		return true
	}
	for _, s := range e.Subkeys {
		if s.PrivateKey != nil && s.PrivateKey.Encrypted {
			return true
		}
	}
	return false
}

// readKeyFile parses every key in path (armored or binary). A file that
// holds secret keys must be private; mustBeSecret demands that the first
// key is one.
func readKeyFile(path string, mustBeSecret bool) (openpgp.EntityList, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	ents, err := parseKeys(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	secret := ents[0].PrivateKey != nil
	for _, e := range ents {
		if e.PrivateKey != nil {
			secret = true
		}
		if e.PrimaryKey.Version != 4 {
			return nil, fmt.Errorf("%s: key %s is a v%d key; GnuPG 2.2 reads only v4 keys", path,
				fingerprint(e.PrimaryKey.Fingerprint), e.PrimaryKey.Version)
		}
	}
	if mustBeSecret && !secret {
		return nil, fmt.Errorf("%s holds a public key, not a secret key", path)
	}
	if secret {
		if err := checkPrivate(path, fi); err != nil {
			return nil, err
		}
	}
	return ents, nil
}

// parseKeys reads every key of an armored or binary key file.
func parseKeys(data []byte) (openpgp.EntityList, error) {
	var ents openpgp.EntityList
	var err error
	if bytes.Contains(data[:min(len(data), 1024)], []byte("-----BEGIN PGP")) {
		ents, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	} else {
		ents, err = openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("not a readable OpenPGP key: %w", err)
	}
	if len(ents) == 0 {
		return nil, errors.New("no OpenPGP key found")
	}
	return ents, nil
}

// readSecretFile reads a small file that must be private.
func readSecretFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := checkPrivate(path, fi); err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(f, limit))
}

// checkPrivate refuses files that group or others may access.
func checkPrivate(path string, fi fs.FileInfo) error {
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %04o; run: chmod 600 %s", ErrInsecureFile, path, perm, path)
	}
	return nil
}

func writeArmoredPublic(w io.Writer, e *openpgp.Entity) error {
	aw, err := armor.Encode(w, openpgp.PublicKeyType, nil)
	if err != nil {
		return fmt.Errorf("write public key: %w", err)
	}
	if err := e.Serialize(aw); err != nil {
		return fmt.Errorf("write public key: %w", err)
	}
	if err := aw.Close(); err != nil {
		return fmt.Errorf("write public key: %w", err)
	}
	return nil
}

// writeNewFile creates path with perm (never overwriting) and syncs it.
func writeNewFile(path string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists; not overwriting a key", path)
		}
		return err
	}
	if err := f.Chmod(perm); err != nil { // umask may have removed bits
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
