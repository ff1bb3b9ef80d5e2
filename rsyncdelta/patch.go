package rsyncdelta

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// Patch applies a librsync delta (ours or rdiff's) to basis and writes the
// new file to w. It rejects malformed deltas (reserved opcodes, zero
// lengths, copies past the end of the basis, a missing END) with an error;
// memory is fixed (a 256 KiB copy buffer and a 256 KiB read buffer), whatever
// the delta says. Bytes after END are not read. Patch checks nothing about
// the output: a container must carry its own hash of the new file.
func Patch(basis io.ReaderAt, delta io.Reader, w io.Writer) error {
	d, err := NewDeltaReader(delta)
	if err != nil {
		return err
	}
	bw, ok := w.(*bufio.Writer)
	if !ok {
		bw = bufio.NewWriterSize(w, 256<<10)
	}
	buf := make([]byte, 256<<10)
	var out int64 // bytes written, for error messages
	for {
		op, err := d.Next()
		if err != nil {
			return fmt.Errorf("patch at output offset %d: %w", out, err)
		}
		switch op.Kind {
		case OpEnd:
			if err := bw.Flush(); err != nil {
				return fmt.Errorf("patch: write output: %w", err)
			}
			return nil
		case OpLiteral:
			n, err := d.WriteTo(bw)
			out += n
			if err != nil {
				return fmt.Errorf("patch at output offset %d: %w", out, err)
			}
		case OpCopy:
			for pos, left := op.Pos, op.Len; left > 0; {
				chunk := buf[:min(left, int64(len(buf)))]
				n, err := basis.ReadAt(chunk, pos)
				if n < len(chunk) {
					if err == nil || errors.Is(err, io.EOF) {
						return fmt.Errorf("patch: the delta copies %d bytes at offset %d, past the end of the basis at %d: wrong basis file?", op.Len, op.Pos, pos+int64(n))
					}
					return fmt.Errorf("patch: read basis at %d: %w", pos, err)
				}
				if _, err := bw.Write(chunk); err != nil {
					return fmt.Errorf("patch: write output: %w", err)
				}
				pos += int64(n)
				left -= int64(n)
				out += int64(n)
			}
		}
	}
}
