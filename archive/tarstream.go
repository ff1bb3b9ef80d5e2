package archive

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"strings"
)

// tarMemBasis is how large a differential's changed file's full version
// may be for WriteTar to hold it in memory while the delta is applied;
// larger ones are staged in the spool, as Restore stages every one.
const tarMemBasis = 32 << 20

// WriteTar writes the entries of set m under paths (all when empty) to w
// as one PAX tar stream, read sequentially from the set's volumes (and a
// differential's full) the way Restore reads them: nothing is extracted to
// disk (a differential's changed file larger than 32 MiB stages its full's
// version in the spool while the delta is applied, as Restore does for
// every one; smaller ones stay in memory). Directories above
// the selected paths are included so that the tar extracts anywhere.
// Every object is checked against the manifest before it is decrypted and
// each file's content against its hash, but a file is written before its
// hash is known: a damaged file ends the stream with an error, and the
// caller must treat a stream that ended with an error as unusable.
func (r *Repository) WriteTar(ctx context.Context, m *Manifest, paths []string, w io.Writer) (RestoreStats, error) {
	sel := newSelection(paths)
	x := &extractor{sel: sel, buf: make([]byte, 1<<20), root: -1, spool: r.SpoolDir, memBasis: tarMemBasis}
	x.self = &cursor{r: r, m: m}
	bm, err := r.fullOf(ctx, m)
	if err != nil {
		return RestoreStats{}, err
	}
	if bm != nil {
		x.base = &cursor{r: r, m: bm}
		defer x.base.close()
	}
	defer x.self.close()
	defer func() {
		if x.baseTableCloser != nil {
			x.baseTableCloser.Close()
		}
	}()
	plan, err := r.plan(ctx, m, sel)
	if err != nil {
		return RestoreStats{}, err
	}
	if len(paths) > 0 && plan.selected == 0 {
		return RestoreStats{}, fmt.Errorf("set %s has none of the paths %s", m.ID, strings.Join(paths, ", "))
	}
	table, tc, err := r.Files(ctx, m)
	if err != nil {
		return RestoreStats{}, err
	}
	defer tc.Close()
	tw := tar.NewWriter(w)
	// A hardlink group whose first name is not selected is written under
	// its first selected name; later names link to that.
	emittedAs := map[string]string{}
	for {
		e, err := table.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return RestoreStats{}, err
		}
		if err := ctx.Err(); err != nil {
			return RestoreStats{}, err
		}
		p := string(e.Path)
		s, a := sel.wants(p)
		switch {
		case !s && !a:
			to, ok := plan.redirect[p]
			if !ok || e.Type != TypeFile {
				continue
			}
			emittedAs[p] = to
			h := tarHeader(e)
			h.Name = tarName(Name(to), false)
			if err := x.tarFile(ctx, tw, h, e); err != nil {
				return RestoreStats{}, err
			}
			continue
		case a && e.Type != TypeDir:
			continue
		}
		h := tarHeader(e)
		if e.Type == TypeHardlink {
			if to, ok := emittedAs[string(e.Target)]; ok {
				if to == p {
					continue // written above with its group's data
				}
				h.Linkname = to
			}
		}
		if e.Type == TypeFile {
			err = x.tarFile(ctx, tw, h, e)
		} else {
			err = tw.WriteHeader(h)
			x.entries++
		}
		if err != nil {
			return RestoreStats{}, fmt.Errorf("tar %s: %w", e.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return RestoreStats{}, err
	}
	if err := x.self.finish(); err != nil {
		return RestoreStats{}, err
	}
	return RestoreStats{Entries: x.entries, Bytes: x.bytes}, nil
}

// tarFile writes a file entry's header and content.
func (x *extractor) tarFile(ctx context.Context, tw *tar.Writer, h *tar.Header, e *Entry) error {
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("tar %s: %w", e.Path, err)
	}
	x.entries++
	return x.content(ctx, e, tw)
}
