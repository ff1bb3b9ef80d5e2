package rsyncdelta

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// DeltaMagic starts every librsync delta.
const DeltaMagic = 0x72730236

// OpKind is the kind of a delta command.
type OpKind int

// The kinds of delta command.
const (
	OpEnd     OpKind = iota // end of the delta
	OpLiteral               // Len bytes of new data follow in the delta
	OpCopy                  // copy Len bytes from basis offset Pos
)

// An Op is one command of a delta.
type Op struct {
	Kind OpKind
	Pos  int64 // basis offset, for OpCopy
	Len  int64 // bytes produced, > 0 for OpLiteral and OpCopy
}

// A DeltaReader decodes a librsync delta command by command. After Next
// returns an OpLiteral, Read returns its data; Next skips what was not read.
type DeltaReader struct {
	r       *bufio.Reader
	literal int64 // unread bytes of the current literal
	done    bool
}

// NewDeltaReader checks the delta's magic and returns a reader for its
// commands.
func NewDeltaReader(r io.Reader) (*DeltaReader, error) {
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < 64<<10 {
		br = bufio.NewReaderSize(r, 256<<10)
	}
	var m [4]byte
	if _, err := io.ReadFull(br, m[:]); err != nil {
		return nil, fmt.Errorf("read delta magic: %w", noEOF(err))
	}
	if got := binary.BigEndian.Uint32(m[:]); got != DeltaMagic {
		return nil, fmt.Errorf("read delta: bad magic %#08x: not a librsync delta (want %#08x)", got, uint32(DeltaMagic))
	}
	return &DeltaReader{r: br}, nil
}

// Next returns the next command. It returns an error for a reserved opcode,
// a zero or too large length, and input that ends before the END command.
// After END it returns OpEnd again; bytes after END are not read.
func (d *DeltaReader) Next() (Op, error) {
	if d.done {
		return Op{Kind: OpEnd}, nil
	}
	if d.literal > 0 {
		if _, err := d.r.Discard(int(min(d.literal, math.MaxInt32))); err != nil {
			return Op{}, fmt.Errorf("read delta literal: %w", noEOF(err))
		}
		// Discard of more than MaxInt32 at once is split.
		d.literal -= min(d.literal, math.MaxInt32)
		if d.literal > 0 {
			return d.Next()
		}
	}
	c, err := d.r.ReadByte()
	if err != nil {
		return Op{}, fmt.Errorf("read delta: %w (the delta ends without an END command: truncated?)", noEOF(err))
	}
	switch {
	case c == opEnd:
		d.done = true
		return Op{Kind: OpEnd}, nil
	case c < opLiteralN1:
		d.literal = int64(c)
		return Op{Kind: OpLiteral, Len: int64(c)}, nil
	case c < opCopyN1N1:
		n, err := d.uint(1 << (c - opLiteralN1))
		if err != nil {
			return Op{}, fmt.Errorf("read delta literal length: %w", err)
		}
		if n == 0 || n > math.MaxInt64 {
			return Op{}, fmt.Errorf("read delta: invalid literal length %d", n)
		}
		d.literal = int64(n)
		return Op{Kind: OpLiteral, Len: int64(n)}, nil
	case c < opReserved:
		k := c - opCopyN1N1
		pos, err := d.uint(1 << (k / 4))
		if err != nil {
			return Op{}, fmt.Errorf("read delta copy position: %w", err)
		}
		n, err := d.uint(1 << (k % 4))
		if err != nil {
			return Op{}, fmt.Errorf("read delta copy length: %w", err)
		}
		if n == 0 || n > math.MaxInt64 || pos > math.MaxInt64-n {
			return Op{}, fmt.Errorf("read delta: invalid copy of %d bytes at %d", n, pos)
		}
		return Op{Kind: OpCopy, Pos: int64(pos), Len: int64(n)}, nil
	default:
		return Op{}, fmt.Errorf("read delta: reserved opcode %#02x: the delta is corrupt", c)
	}
}

// Read reads the data of the current literal; it returns io.EOF at its end.
func (d *DeltaReader) Read(p []byte) (int, error) {
	if d.literal == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > d.literal {
		p = p[:d.literal]
	}
	n, err := d.r.Read(p)
	d.literal -= int64(n)
	if err == io.EOF {
		return n, fmt.Errorf("read delta literal: %w", io.ErrUnexpectedEOF)
	}
	return n, err
}

// WriteTo copies the rest of the current literal to w.
func (d *DeltaReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for d.literal > 0 {
		b, err := d.r.Peek(int(min(d.literal, int64(d.r.Size()))))
		if len(b) == 0 && err != nil {
			return total, fmt.Errorf("read delta literal: %w", noEOF(err))
		}
		n, werr := w.Write(b)
		total += int64(n)
		d.literal -= int64(n)
		d.r.Discard(n)
		if werr != nil {
			return total, werr
		}
	}
	return total, nil
}

func (d *DeltaReader) uint(width int) (uint64, error) {
	var b [8]byte
	if _, err := io.ReadFull(d.r, b[8-width:]); err != nil {
		return 0, noEOF(err)
	}
	return binary.BigEndian.Uint64(b[:]), nil
}

// librsync's delta opcodes (prototab.c).
const (
	opEnd       = 0x00
	opLiteral1  = 0x01 // ..0x40: literal of 1..64 bytes, length in the opcode
	opLiteralN1 = 0x41 // ..0x44: literal, length in 1, 2, 4 or 8 bytes
	opCopyN1N1  = 0x45 // ..0x54: copy, position and length in 1, 2, 4 or 8 bytes each
	opReserved  = 0x55 // and above
)

// deltaWriter encodes commands as librsync does: the smallest operand
// widths, literals of up to 64 bytes in the opcode, adjacent copies merged.
type deltaWriter struct {
	w       *bufio.Writer
	copyPos int64 // pending copy, if copyLen > 0
	copyLen int64
	hdr     [17]byte
	stats   DeltaStats
}

func newDeltaWriter(w io.Writer) *deltaWriter {
	d := &deltaWriter{w: bufio.NewWriterSize(w, 64<<10)}
	var m [4]byte
	binary.BigEndian.PutUint32(m[:], DeltaMagic)
	d.w.Write(m[:])
	d.stats.DeltaBytes = 4
	return d
}

// literal writes p (not empty) as new data.
func (d *deltaWriter) literal(p []byte) {
	d.flushCopy()
	h := d.hdr[:0]
	n := uint64(len(p))
	if n <= 64 {
		h = append(h, byte(n))
	} else {
		w := widthClass(n)
		h = appendUint(append(h, opLiteralN1+byte(w)), n, w)
	}
	d.w.Write(h)
	d.w.Write(p)
	d.stats.Commands++
	d.stats.LiteralBytes += int64(len(p))
	d.stats.DeltaBytes += int64(len(h) + len(p))
}

// copy writes a copy of n bytes from basis offset pos, merged with the
// previous copy if that ends at pos.
func (d *deltaWriter) copy(pos, n int64) {
	if d.copyLen > 0 && d.copyPos+d.copyLen == pos {
		d.copyLen += n
		return
	}
	d.flushCopy()
	d.copyPos, d.copyLen = pos, n
}

func (d *deltaWriter) flushCopy() {
	if d.copyLen == 0 {
		return
	}
	wp, wl := widthClass(uint64(d.copyPos)), widthClass(uint64(d.copyLen))
	h := append(d.hdr[:0], opCopyN1N1+byte(4*wp+wl))
	h = appendUint(h, uint64(d.copyPos), wp)
	h = appendUint(h, uint64(d.copyLen), wl)
	d.w.Write(h)
	d.stats.Commands++
	d.stats.CopyBytes += d.copyLen
	d.stats.DeltaBytes += int64(len(h))
	d.copyLen = 0
}

// err returns the first error of the underlying writer, if any.
func (d *deltaWriter) err() error {
	if _, err := d.w.Write(nil); err != nil {
		return fmt.Errorf("write delta: %w", err)
	}
	return nil
}

// end writes the END command and flushes.
func (d *deltaWriter) end() error {
	d.flushCopy()
	d.w.WriteByte(opEnd)
	d.stats.Commands++
	d.stats.DeltaBytes++
	if err := d.w.Flush(); err != nil {
		return fmt.Errorf("write delta: %w", err)
	}
	return nil
}

// widthClass returns 0, 1, 2 or 3 for a value that fits 1, 2, 4 or 8 bytes.
func widthClass(v uint64) int {
	switch {
	case v <= math.MaxUint8:
		return 0
	case v <= math.MaxUint16:
		return 1
	case v <= math.MaxUint32:
		return 2
	}
	return 3
}

func appendUint(b []byte, v uint64, class int) []byte {
	switch class {
	case 0:
		return append(b, byte(v))
	case 1:
		return binary.BigEndian.AppendUint16(b, uint16(v))
	case 2:
		return binary.BigEndian.AppendUint32(b, uint32(v))
	}
	return binary.BigEndian.AppendUint64(b, v)
}
