// Package seal encrypts and signs every object of a backup (OpenPGP, readable
// by stock GnuPG 2.2) and opens sealed objects again, trusting nothing it has
// not verified.
//
// One Box holds the keys of one configuration. Seal streams plaintext into a
// binary OpenPGP message: encrypted to every recipient (SEIPDv1 + MDC,
// AES-256, no OpenPGP compression) and signed by the host key in the same
// pass. Open streams it back and reports io.EOF only after the integrity check
// (MDC) and the signature of the expected signer (by fingerprint, not "any key
// in the ring") have both passed. A Box is safe for concurrent use, so several
// volumes can be sealed in parallel.
//
// The settings and the reasons for them are written down in docs/sealing.md.
package seal

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/backtory/backtory/internal/atomicfile"

	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"
)

// Config is the `encryption:` section of backtory's configuration.
//
// Key mode (the default): objects are encrypted to every key in Recipients
// (and to SigningKey's own public key) and signed by SigningKey. Opening
// needs a secret key that can decrypt (SigningKey or one of DecryptionKeys)
// and accepts only signatures by the expected signer: SignerFingerprint if
// set, otherwise SigningKey.
//
// Passphrase mode (Mode "passphrase"): objects are encrypted with the
// passphrase alone and are not signed; whoever knows the passphrase can read
// and forge objects. Meant for small setups only.
//
// The passphrase (for a protected secret key, or for passphrase mode) comes
// from PassphraseFile, or else from the environment variable
// BACKTORY_KEY_PASSPHRASE. It never comes from the command line.
type Config struct {
	// Mode is "keys" (the default when empty) or "passphrase".
	Mode string `yaml:"mode,omitempty"`
	// Recipients are public key files (armored or binary); every object is
	// encrypted to all of them, e.g. the host's key and an offline admin key.
	Recipients []string `yaml:"recipients,omitempty"`
	// SigningKey is the host's secret key file (mode 0600). It signs every
	// object, decrypts, and is always a recipient too.
	SigningKey string `yaml:"signing_key,omitempty"`
	// DecryptionKeys are further secret key files tried when opening, e.g.
	// the offline admin key when restoring a dead host's backups.
	DecryptionKeys []string `yaml:"decryption_keys,omitempty"`
	// SignerFingerprint pins the expected signer (40 hex digits, spaces
	// allowed). Required when SigningKey is empty; when both are set they
	// must agree. The signer's public key must be in Recipients or SigningKey.
	SignerFingerprint string `yaml:"signer_fingerprint,omitempty"`
	// PassphraseFile holds the passphrase (first line) that unlocks the
	// secret keys, or, in passphrase mode, the passphrase of the objects.
	// It must not be readable by group or others.
	PassphraseFile string `yaml:"passphrase_file,omitempty"`
}

// PassphraseEnv is the environment variable read when PassphraseFile is empty.
const PassphraseEnv = "BACKTORY_KEY_PASSPHRASE"

// Modes of Config.Mode.
const (
	ModeKeys       = "keys"
	ModePassphrase = "passphrase"
)

// Errors returned by Open, VerifyDetached and New. They are wrapped with
// details; test for them with errors.Is.
var (
	// ErrCorrupt: the object was truncated or modified (MDC or packet
	// structure check failed).
	ErrCorrupt = errors.New("truncated or corrupted (integrity check failed)")
	// ErrBadSignature: the signature does not match the content.
	ErrBadSignature = errors.New("bad signature")
	// ErrWrongSigner: signed, but not by the expected signer, or not signed.
	ErrWrongSigner = errors.New("not signed by the expected key")
	// ErrWrongKey: none of our secret keys can decrypt the object.
	ErrWrongKey = errors.New("wrong decryption key")
	// ErrWrongPassphrase: the passphrase does not open the key or object.
	ErrWrongPassphrase = errors.New("wrong passphrase")
	// ErrInsecureFile: a secret key or passphrase file is readable by
	// group or others.
	ErrInsecureFile = errors.New("secret file is accessible by group or others")
)

// Box seals and opens objects with the keys of one Config. It is safe for
// concurrent use by several goroutines.
type Box struct {
	mode       string
	signer     *openpgp.Entity   // secret, unlocked; nil when the Box can only open
	recipients []*openpgp.Entity // public; includes the signer
	keyring    openpgp.EntityList
	expected   []byte            // expected signer's primary fingerprint (key mode)
	files      map[string]string // primary fingerprint -> the key file it came from
	passphrase []byte            // passphrase mode only
	cfg        *packet.Config
}

// New loads the keys named by cfg. Secret key files and the passphrase file
// must not be accessible by group or others (ErrInsecureFile).
func New(cfg Config) (*Box, error) {
	b := &Box{mode: cfg.Mode, cfg: packetConfig()}
	if b.mode == "" {
		b.mode = ModeKeys
	}
	var err error
	switch b.mode {
	case ModePassphrase:
		err = b.loadPassphraseMode(cfg)
	case ModeKeys:
		err = b.loadKeyMode(cfg)
	default:
		err = fmt.Errorf("encryption: unknown mode %q (want %q or %q)", cfg.Mode, ModeKeys, ModePassphrase)
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Seal starts a sealed object written to dst. Write the plaintext to the
// returned writer; Close finishes the message (MDC and signature) but does
// not close dst. The output is binary OpenPGP, not armored.
func (b *Box) Seal(dst io.Writer) (io.WriteCloser, error) {
	bw := bufio.NewWriterSize(dst, 64<<10)
	params := &openpgp.EncryptParams{Hints: &openpgp.FileHints{}, Config: b.cfg}
	var pt io.WriteCloser
	var err error
	if b.mode == ModePassphrase {
		pt, err = openpgp.SymmetricallyEncryptWithParams(b.passphrase, bw, params)
	} else {
		if b.signer == nil {
			return nil, errors.New("seal: no signing_key configured: this configuration can only open objects")
		}
		params.Signers = []*openpgp.Entity{b.signer}
		pt, err = openpgp.EncryptWithParams(bw, b.recipients, nil, params)
	}
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return &sealWriter{pt: pt, bw: bw}, nil
}

// Open starts reading the sealed object src. The returned reader yields the
// plaintext; at the end it returns io.EOF only if the integrity check and
// the expected signature have passed, and an error otherwise. Until io.EOF,
// the plaintext is unverified: stage it, and move it into place only after
// io.EOF.
func (b *Box) Open(src io.Reader) (io.Reader, error) {
	ring := &recordingRing{EntityList: b.keyring}
	var prompt openpgp.PromptFunction
	if b.mode == ModePassphrase {
		tried := false
		prompt = func(_ []openpgp.Key, symmetric bool) ([]byte, error) {
			if !symmetric {
				return nil, errNotPassphrase
			}
			if tried {
				return nil, ErrWrongPassphrase
			}
			tried = true
			return b.passphrase, nil
		}
	}
	sr := &sourceReader{r: src}
	md, err := openpgp.ReadMessage(bufio.NewReaderSize(sr, 64<<10), ring, prompt, b.cfg)
	if sr.err != nil {
		return nil, fmt.Errorf("open: read: %w", sr.err)
	}
	if err != nil {
		return nil, b.openError(err, ring.seen)
	}
	if !md.IsEncrypted {
		return nil, fmt.Errorf("%w: not a sealed object: its content is not encrypted", ErrCorrupt)
	}
	return &openReader{box: b, md: md, src: sr}, nil
}

// OpenTo opens the sealed object src into the file path: it decrypts into a
// temporary file beside path and renames it into place only after the
// object verified; on any error nothing is left at path or beside it.
func (b *Box) OpenTo(src io.Reader, path string, perm os.FileMode) error {
	r, err := b.Open(src)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, perm, func(w io.Writer) error {
		_, err := io.CopyBuffer(w, r, make([]byte, 256<<10))
		return err
	})
}

// SignerFingerprint returns the expected signer's fingerprint (40 upper-case
// hex digits), or "" in passphrase mode.
func (b *Box) SignerFingerprint() string {
	if b.expected == nil {
		return ""
	}
	return fingerprint(b.expected)
}

// WriteSignerPublicKey writes the expected signer's public key, armored, to
// w (for the recovery script, which verifies with gpg).
func (b *Box) WriteSignerPublicKey(w io.Writer) error {
	for _, e := range b.keyring {
		if bytes.Equal(e.PrimaryKey.Fingerprint, b.expected) {
			return writeArmoredPublic(w, e)
		}
	}
	return errors.New("export public key: no signer key (passphrase mode)")
}

// ReadPassphrase returns the passphrase from file (first line, which must
// not be empty; the file must be private), or, when file is "", from the
// environment variable BACKTORY_KEY_PASSPHRASE, or nil when that is unset.
func ReadPassphrase(file string) ([]byte, error) {
	if file == "" {
		if v, ok := os.LookupEnv(PassphraseEnv); ok && v != "" {
			return []byte(v), nil
		}
		return nil, nil
	}
	data, err := readSecretFile(file, 4096)
	if err != nil {
		return nil, fmt.Errorf("passphrase file: %w", err)
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) == 0 {
		return nil, fmt.Errorf("passphrase file %s: the first line is empty", file)
	}
	return line, nil
}

// sealWriter finishes the OpenPGP message and flushes the output buffer.
type sealWriter struct {
	pt     io.WriteCloser
	bw     *bufio.Writer
	closed bool
}

// maxChunk bounds each write into go-crypto: its partial-length writer
// buffers a whole write, and its CFB writer allocates one of the same size.
const maxChunk = 64 << 10

func (w *sealWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), maxChunk)]
		n, err := w.pt.Write(chunk)
		written += n
		if err != nil {
			return written, fmt.Errorf("seal: %w", err)
		}
		p = p[n:]
	}
	return written, nil
}

func (w *sealWriter) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	if err := w.pt.Close(); err != nil {
		return fmt.Errorf("seal: finish message: %w", err)
	}
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	return nil
}

// openReader turns go-crypto's end-of-message results into one error.
type openReader struct {
	box *Box
	md  *openpgp.MessageDetails
	src *sourceReader
	err error // sticky: set once the end was reached or reading failed
}

func (r *openReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.md.UnverifiedBody.Read(p)
	switch {
	case err == io.EOF && r.src.err == nil:
		r.err = r.box.verify(r.md)
		if r.err == nil {
			r.err = io.EOF
		}
		return n, r.err
	case r.src.err != nil:
		r.err = fmt.Errorf("open: read: %w", r.src.err)
		return n, r.err
	case err != nil:
		r.err = readError(err)
		return n, r.err
	}
	return n, nil
}

// verify applies the verification rule once the whole body was read.
func (b *Box) verify(md *openpgp.MessageDetails) error {
	if !md.IsVerified && md.IsSigned {
		return fmt.Errorf("%w: signature not checked", ErrBadSignature)
	}
	if b.mode == ModePassphrase {
		if !md.IsSymmetricallyEncrypted || md.DecryptedWith.PublicKey != nil {
			return fmt.Errorf("%w: object was not encrypted with the passphrase", ErrWrongKey)
		}
		if md.IsSigned && md.SignatureError != nil && !errors.Is(md.SignatureError, pgperrors.ErrUnknownIssuer) {
			return fmt.Errorf("%w: %v", ErrBadSignature, md.SignatureError)
		}
		return nil
	}
	if !md.IsSigned || len(md.SignatureCandidates) == 0 {
		return fmt.Errorf("%w: the object is not signed, expected a signature by %s", ErrWrongSigner, b.SignerFingerprint())
	}
	// Accept the message if any signature is a valid one by the expected
	// signer; otherwise report the most telling failure.
	var bad error
	var others []string
	for _, c := range md.SignatureCandidates {
		if c.SignedByEntity == nil {
			others = append(others, "unknown key "+issuerName(c))
			continue
		}
		fpr := c.SignedByEntity.PrimaryKey.Fingerprint
		if !bytes.Equal(fpr, b.expected) {
			others = append(others, fingerprint(fpr))
			continue
		}
		if c.SignatureError == nil && c.SignedBy != nil {
			return nil
		}
		bad = c.SignatureError
	}
	if bad != nil {
		return fmt.Errorf("%w by %s: %v", ErrBadSignature, b.SignerFingerprint(), bad)
	}
	return fmt.Errorf("%w: signed by %s, expected %s", ErrWrongSigner, strings.Join(others, ", "), b.SignerFingerprint())
}

// openError explains why ReadMessage could not start.
func (b *Box) openError(err error, ids []uint64) error {
	switch {
	case errors.Is(err, ErrWrongPassphrase):
		return fmt.Errorf("%w for this object", ErrWrongPassphrase)
	case errors.Is(err, errNotPassphrase):
		return fmt.Errorf("%w: this object is encrypted to keys %s, not with a passphrase", ErrWrongKey, keyIDs(ids))
	case errors.Is(err, pgperrors.ErrKeyIncorrect):
		if b.mode == ModePassphrase {
			if len(ids) > 0 {
				return fmt.Errorf("%w: this object is encrypted to keys %s, not with a passphrase", ErrWrongKey, keyIDs(ids))
			}
			return fmt.Errorf("%w for this object", ErrWrongPassphrase)
		}
		ours := b.decryptionKeyIDs()
		for _, id := range ids {
			for _, o := range ours {
				if id == o {
					return fmt.Errorf("%w: the session key for our key %016X does not decrypt", ErrCorrupt, id)
				}
			}
		}
		if len(ids) == 0 {
			return fmt.Errorf("%w: this object is encrypted with a passphrase, not to a key", ErrWrongKey)
		}
		return fmt.Errorf("%w: this object is encrypted to %s; the secret keys configured are %s", ErrWrongKey, b.describeKeys(ids), b.secretKeys())
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: the object ends early", ErrCorrupt)
	}
	return fmt.Errorf("%w: not a valid sealed object (%v)", ErrCorrupt, err)
}

// readError maps an error from the middle of the body. The source read
// fine, so whatever go-crypto reports is damage to the object.
func readError(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: the object ends early", ErrCorrupt)
	}
	return ErrCorrupt
}

// sourceReader remembers an error of the underlying reader, so that a
// failing disk or network is not reported as a corrupted object.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

var errNotPassphrase = errors.New("not passphrase-encrypted")

// recordingRing remembers the key IDs a message is encrypted to, so that a
// "wrong key" error can name them. One Open uses it from one goroutine.
type recordingRing struct {
	openpgp.EntityList
	seen []uint64
}

func (r *recordingRing) EntitiesById(id uint64) []*openpgp.Entity {
	r.seen = append(r.seen, id)
	return r.EntityList.EntitiesById(id)
}

// describeKeys names the keys that hold the (sub)key ids: by primary
// fingerprint and key file when configured, with a hint when only the
// public part is; else by key id.
func (b *Box) describeKeys(ids []uint64) string {
	var out []string
	for _, id := range ids {
		e := b.entityOf(id)
		if e == nil {
			out = append(out, fmt.Sprintf("key id %016X, which no configured key file holds", id))
			continue
		}
		fpr := fingerprint(e.PrimaryKey.Fingerprint)
		d := fmt.Sprintf("key %s (%s)", fpr, b.files[fpr])
		if e.PrivateKey == nil {
			d += ", whose secret key is not configured: add its secret key file to decryption_keys"
		}
		out = append(out, d)
	}
	return strings.Join(out, "; ")
}

// secretKeys names the configured secret keys by primary fingerprint and file.
func (b *Box) secretKeys() string {
	var out []string
	for _, e := range b.keyring {
		if e.PrivateKey != nil {
			fpr := fingerprint(e.PrimaryKey.Fingerprint)
			out = append(out, fmt.Sprintf("%s (%s)", fpr, b.files[fpr]))
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// entityOf returns the configured key whose primary key or subkey has id.
func (b *Box) entityOf(id uint64) *openpgp.Entity {
	for _, e := range b.keyring {
		if e.PrimaryKey.KeyId == id {
			return e
		}
		for _, sk := range e.Subkeys {
			if sk.PublicKey.KeyId == id {
				return e
			}
		}
	}
	return nil
}

func (b *Box) decryptionKeyIDs() []uint64 {
	var ids []uint64
	for _, e := range b.keyring {
		if e.PrivateKey == nil {
			continue
		}
		for _, k := range e.DecryptionKeys(0, zeroTime, b.cfg) {
			ids = append(ids, k.PublicKey.KeyId)
		}
	}
	return ids
}

func issuerName(c *openpgp.SignatureCandidate) string {
	if s := c.CorrespondingSig; s != nil && len(s.IssuerFingerprint) > 0 {
		return fingerprint(s.IssuerFingerprint)
	}
	if len(c.IssuerFingerprint) > 0 {
		return fingerprint(c.IssuerFingerprint)
	}
	return fmt.Sprintf("ID %016X", c.IssuerKeyId)
}

func keyIDs(ids []uint64) string {
	if len(ids) == 0 {
		return "(none)"
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprintf("%016X", id)
	}
	return strings.Join(s, ", ")
}

func fingerprint(fpr []byte) string { return strings.ToUpper(fmt.Sprintf("%x", fpr)) }
