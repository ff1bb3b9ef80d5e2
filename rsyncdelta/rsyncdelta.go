// Package rsyncdelta computes rsync-style differences between versions of a
// file: block signatures whose strong sums are a secret-keyed MAC, deltas in
// librsync's delta format (so a stock `rdiff patch` applies them), and a
// patcher for any librsync delta.
//
// The three steps mirror rdiff's:
//
//	signature: basis      -> Signature  (NewSignatureWriter, ReadSignature)
//	delta:     Signature + new file -> delta     (Delta)
//	patch:     basis + delta        -> new file  (Patch)
//
// Everything streams: a signature is written while the basis is read once, a
// delta reads the new file once and holds only the signature plus a window of
// about a MiB, and a patch holds one copy buffer. The formats, the block
// length rule and the security argument are in docs/rsyncdelta.md.
package rsyncdelta

import (
	"errors"
	"math/bits"

	"github.com/zeebo/blake3"
)

// KeySize is the length in bytes of the secret key that signatures are made
// and checked with.
const KeySize = 32

// Block length limits. BlockLen returns values within them; a signature with
// a block length outside them is rejected.
const (
	MinBlockLen     = 64
	MaxBlockLen     = 1 << 20
	DefaultBlockLen = 8 << 10 // for a basis of unknown size
)

// ErrWrongKey is returned (wrapped) by ReadSignature when the signature was
// made with another key.
var ErrWrongKey = errors.New("signature was made with a different key")

// KeyID returns a short public identifier of key. It is recorded in every
// signature so that checking with the wrong key is an error rather than a
// delta in which nothing matched.
func KeyID(key []byte) [8]byte {
	var id [8]byte
	blake3.DeriveKey("backtory rsyncdelta v1 key id", key, id[:])
	return id
}

// BlockLen returns the block length used for a basis of size bytes: a
// quarter of the square root of the size, rounded up to a power of two and
// clamped to 1 KiB..64 KiB, but at least 8 KiB from 64 MiB on, where keyed
// BLAKE3 runs four times faster than on smaller blocks. So 1 MiB -> 1 KiB,
// 32 MiB -> 2 KiB, 64 MiB..1 GiB -> 8 KiB, 16 GiB -> 32 KiB, 64 GiB and
// more -> 64 KiB. A negative size (unknown) gives DefaultBlockLen (8 KiB).
func BlockLen(size int64) int {
	const lo, hi, fast, big = 1 << 10, 64 << 10, 8 << 10, 64 << 20
	if size < 0 {
		return DefaultBlockLen
	}
	b := lo
	if q := isqrt(uint64(size)) / 4; q > lo {
		b = min(1<<bits.Len64(q-1), hi) // next power of two >= q
	}
	if size >= big {
		b = max(b, fast)
	}
	return b
}

func isqrt(x uint64) uint64 {
	if x == 0 {
		return 0
	}
	r := uint64(1) << ((bits.Len64(x) + 1) / 2) // r >= sqrt(x)
	for {
		s := (r + x/r) / 2
		if s >= r {
			return r
		}
		r = s
	}
}
