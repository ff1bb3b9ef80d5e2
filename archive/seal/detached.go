package seal

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"
)

// SignDetached writes an armored detached signature of src by the signing
// key to dst (for recover.sh and the rescue binary; `gpg --verify` checks it).
func (b *Box) SignDetached(dst io.Writer, src io.Reader) error {
	if b.signer == nil {
		return errors.New("sign: no signing_key configured")
	}
	err := openpgp.ArmoredDetachSign(dst, []*openpgp.Entity{b.signer}, bufio.NewReaderSize(src, 64<<10),
		&openpgp.SignParams{Config: b.cfg})
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	return nil
}

// VerifyDetached checks that sig (armored or binary) is a valid signature of
// src by the expected signer. It reads src to the end.
func (b *Box) VerifyDetached(sig, src io.Reader) error {
	if b.expected == nil {
		return errors.New("verify: no signer key (passphrase mode)")
	}
	br := bufio.NewReader(sig)
	head, _ := br.Peek(64)
	var body io.Reader = br
	if bytes.Contains(head, []byte("-----BEGIN PGP")) {
		block, err := armor.Decode(br)
		if err != nil {
			return fmt.Errorf("verify: %w: unreadable signature: %v", ErrBadSignature, err)
		}
		if block.Type != openpgp.SignatureType {
			return fmt.Errorf("verify: %w: expected a PGP SIGNATURE, got %s", ErrBadSignature, block.Type)
		}
		body = block.Body
	}
	md, err := openpgp.VerifyDetachedSignatureReader(b.keyring, bufio.NewReaderSize(src, 64<<10), body, b.cfg)
	if err != nil {
		if errors.Is(err, pgperrors.ErrUnknownIssuer) {
			return fmt.Errorf("verify: %w: signed by an unknown key, expected %s", ErrWrongSigner, b.SignerFingerprint())
		}
		return fmt.Errorf("verify: %w: unreadable signature: %v", ErrBadSignature, err)
	}
	if _, err := io.Copy(io.Discard, md.UnverifiedBody); err != nil {
		return fmt.Errorf("verify: read: %w", err)
	}
	if err := b.verify(md); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	return nil
}
