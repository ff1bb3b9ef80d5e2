package archive

import (
	"context"
	"io"
	"testing"
)

// CraftForStock writes, on the local remote in dir, an unsealed full and a
// differential of host h, source s (each holding a file "a"), with extra
// tar entries {name, data, symlink target} in the full's and the
// differential's volume; it returns their ids. For tests of stock-tool
// restores outside this package.
func CraftForStock(t *testing.T, dir string, fullExtra, diffExtra [][3]string) (full, diff string) {
	t.Helper()
	raw := func(xs [][3]string) []rawTar {
		var out []rawTar
		for _, x := range xs {
			out = append(out, rawTar{name: x[0], data: x[1], link: x[2]})
		}
		return out
	}
	file := func(data string) item {
		return item{e: Entry{Path: "a", Type: TypeFile, Mode: 0o644, Size: int64(len(data)), Hash: b3(data), Volume: 1}, data: data}
	}
	root := item{e: Entry{Path: ".", Type: TypeDir, Mode: 0o755}}
	full, diff = "full-20260101T000000Z", "diff-20260102T000000Z"
	craftRepo(t, dir, nil, []craft{
		{id: full, stock: true, items: []item{root, file("x")}, extra: raw(fullExtra)},
		{id: diff, stock: true, base: full, items: []item{root, file("y")}, extra: raw(diffExtra)},
	})
	return full, diff
}

// SetMoveMinSize lowers the size from which moved files are looked for,
// for tests with small trees; the returned func restores it.
func SetMoveMinSize(n int64) func() {
	old := moveMinSize
	moveMinSize = n
	return func() { moveMinSize = old }
}

// OpenVolume returns the plaintext of volume n (from 1) of set m.
func (r *Repository) OpenVolume(ctx context.Context, m *Manifest, n int) (io.ReadCloser, error) {
	return r.open(ctx, m, m.Volumes[n-1])
}
