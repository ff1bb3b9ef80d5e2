package rsyncdelta

import (
	"encoding/binary"

	"github.com/zeebo/blake3"
)

// rkMul is the multiplier of the rolling sum (librsync's RabinKarp one).
const rkMul uint32 = 0x08104225

// sigKeys are the per-signature keys derived from the caller's key and the
// signature's random salt.
type sigKeys struct {
	block [32]byte // keyed BLAKE3 key for block MACs
	seal  [32]byte // keyed BLAKE3 key for the signature's trailer MAC
	weak  weakSum  // keyed byte table of the rolling sum
}

func deriveKeys(key []byte, salt [16]byte, blockLen int) *sigKeys {
	material := make([]byte, 0, len(key)+len(salt))
	material = append(material, key...)
	material = append(material, salt[:]...)
	out := make([]byte, 64+256*4)
	blake3.DeriveKey("backtory rsyncdelta v1 signature keys", material, out)
	k := &sigKeys{}
	copy(k.block[:], out[0:32])
	copy(k.seal[:], out[32:64])
	var table [256]uint32
	for i := range table {
		table[i] = binary.BigEndian.Uint32(out[64+4*i:])
	}
	k.weak.init(table, blockLen)
	return k
}

// weakSum is a keyed Rabin-Karp rolling sum over windows of blockLen bytes:
//
//	sum(b[0..n)) = Σ T[b[i]]·M^(n-1-i)  mod 2^32
//
// where T is a secret table of 256 random words and M = rkMul. Without the
// key nobody can craft windows with chosen sums.
type weakSum struct {
	t   [8][256]uint32 // t[k][b] = T[b]·M^k, for the 8-way unrolled sum
	out [256]uint32    // out[b] = T[b]·M^blockLen, to roll a byte out
	m8  uint32         // M^8
}

func (w *weakSum) init(table [256]uint32, blockLen int) {
	pow := uint32(1)
	for k := 0; k < 8; k++ {
		for b := range 256 {
			w.t[k][b] = table[b] * pow
		}
		pow *= rkMul
	}
	w.m8 = pow
	mn := uint32(1) // M^blockLen, by squaring
	for b, e := rkMul, blockLen; e > 0; e >>= 1 {
		if e&1 == 1 {
			mn *= b
		}
		b *= b
	}
	for b := range 256 {
		w.out[b] = table[b] * mn
	}
}

// sum returns the weak sum of p.
func (w *weakSum) sum(p []byte) uint32 {
	var h uint32
	t := &w.t
	m8 := w.m8
	for len(p) >= 8 {
		v := binary.LittleEndian.Uint64(p)
		// Sum the terms as a tree, so the dependency chain from one
		// step to the next is one multiply and one add.
		s := (t[7][byte(v)] + t[6][byte(v>>8)]) + (t[5][byte(v>>16)] + t[4][byte(v>>24)]) +
			((t[3][byte(v>>32)] + t[2][byte(v>>40)]) + (t[1][byte(v>>48)] + t[0][byte(v>>56)]))
		h = h*m8 + s
		p = p[8:]
	}
	for _, b := range p {
		h = h*rkMul + t[0][b]
	}
	return h
}

// roll moves a blockLen window one byte on: out leaves, in enters.
func (w *weakSum) roll(h uint32, out, in byte) uint32 {
	return h*rkMul + (w.t[0][in] - w.out[out])
}
