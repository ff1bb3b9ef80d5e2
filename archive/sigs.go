package archive

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"io"

	"github.com/backtory/backtory/rsyncdelta"
)

// sigsMagic starts a full's sigs object; the full's random MAC key follows,
// then one rsyncdelta signature per regular file, in file table order.
const sigsMagic = "backtory-sigs 1\n"

// newSigsWriter starts a sigs object with a fresh random MAC key.
func newSigsWriter(dir, name string, comp Compression, sealer Sealer) (*objectWriter, []byte, error) {
	key, err := newSigsKey()
	if err != nil {
		return nil, nil, err
	}
	o, err := newObjectWriter(dir, name, comp, sealer)
	if err != nil {
		return nil, nil, err
	}
	if _, err := io.WriteString(o, sigsMagic); err != nil {
		o.abort()
		return nil, nil, err
	}
	if _, err := o.Write(key); err != nil {
		o.abort()
		return nil, nil, err
	}
	return o, key, nil
}

// newSigsKey returns a fresh random MAC key for a full's signatures.
func newSigsKey() ([]byte, error) {
	key := make([]byte, rsyncdelta.KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("signature key: %w", err)
	}
	return key, nil
}

// sigsReader reads a full's signatures in file table order.
type sigsReader struct {
	r   *bufio.Reader
	key []byte
}

func newSigsReader(r io.Reader) (*sigsReader, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	head := make([]byte, len(sigsMagic)+rsyncdelta.KeySize)
	if _, err := io.ReadFull(br, head); err != nil {
		return nil, fmt.Errorf("sigs: %w", err)
	}
	if string(head[:len(sigsMagic)]) != sigsMagic {
		return nil, fmt.Errorf("sigs: not a signatures object of this format")
	}
	return &sigsReader{r: br, key: head[len(sigsMagic):]}, nil
}

// next reads the signature of a file of the given size.
func (s *sigsReader) next() (*rsyncdelta.Signature, error) {
	return rsyncdelta.ReadSignature(s.r, s.key)
}

// skip passes over the signature of a file of the given size.
func (s *sigsReader) skip(size int64) error {
	n := rsyncdelta.SignatureSize(size, rsyncdelta.BlockLen(size))
	if _, err := io.CopyN(io.Discard, s.r, n); err != nil {
		return fmt.Errorf("sigs: %w", err)
	}
	return nil
}
