package rsyncdelta

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
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
	// File to file, long copies go through copy_file_range(2): one copy in
	// the kernel instead of two through our buffer.
	srcFile, _ := basis.(*os.File)
	dstFile, _ := w.(*os.File)
	inKernel := srcFile != nil && dstFile != nil
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
			pos, left := op.Pos, op.Len
			if inKernel && left >= 64<<10 {
				if err := bw.Flush(); err != nil {
					return fmt.Errorf("patch: write output: %w", err)
				}
				n, err := copyFileRange(srcFile, pos, dstFile, left)
				pos, left, out = pos+n, left-n, out+n
				switch {
				case errors.Is(err, errUnsupported):
					inKernel = false // and copy the rest below
				case errors.Is(err, io.EOF):
					return fmt.Errorf("patch: the delta copies %d bytes at offset %d, past the end of the basis at %d: wrong basis file?", op.Len, op.Pos, pos)
				case err != nil:
					return fmt.Errorf("patch: copy from basis at %d: %w", pos, err)
				}
			}
			for left > 0 {
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

var errUnsupported = errors.New("copy_file_range is not supported here")

// copyFileRange copies n bytes from src at pos to dst at its current offset
// in the kernel. It returns errUnsupported (wrapped) when the files do not
// allow it, after the bytes it did copy, and io.EOF at the end of src.
func copyFileRange(src *os.File, pos int64, dst *os.File, n int64) (int64, error) {
	var done int64
	for done < n {
		off := pos + done
		k, err := unix.CopyFileRange(int(src.Fd()), &off, int(dst.Fd()), nil, int(min(n-done, 1<<30)), 0)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EXDEV || err == unix.ENOSYS || err == unix.EINVAL || err == unix.EOPNOTSUPP || err == unix.EBADF:
			return done, fmt.Errorf("%w: %v", errUnsupported, err)
		case err != nil:
			return done, err
		case k == 0:
			return done, io.EOF
		}
		done += int64(k)
	}
	return done, nil
}
