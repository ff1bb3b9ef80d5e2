package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zeebo/blake3"
	"golang.org/x/sys/unix"

	"github.com/backtory/backtory/archive/seal"
	"github.com/backtory/backtory/internal/testenv"
	"github.com/backtory/backtory/remote"
)

// The hostile-remote suite: sets crafted as someone who can write the
// remote would craft them (unsealed, or sealed with the passphrase alone:
// the modes where that someone can make a valid set). Each is restored into
// an empty target and, with --force, into a prepared one, with a canary
// directory beside the target. Each is refused with a one-line error or
// confined; the canary and the target's parent never change.

// item is one crafted path: its file table entry and, for files, the
// content stored in the volume under the entry's own name.
type item struct {
	e    Entry
	data string
}

// rawTar is a tar entry written to the volume as is (names that disagree
// with the table, or .backtory/deleted).
type rawTar struct {
	name string
	data string
	link string // a symlink to this, when not ""
}

type craft struct {
	id    string
	items []item
	extra []rawTar
	base  string // for a differential: the full's id
	stock bool   // also write directories and symlinks to the volume, as stock tools read them
}

const hostileCanary = "canary"

func TestHostileRemote(t *testing.T) {
	dir := t.TempDir()
	canary := filepath.Join(dir, hostileCanary)
	abs := filepath.Join(canary, "secret")
	file := func(p, data string) item {
		return item{e: Entry{Path: Name(p), Type: TypeFile, Mode: 0o644, Size: int64(len(data)), Hash: b3(data), Volume: 1}, data: data}
	}
	d := func(p string) item { return item{e: Entry{Path: Name(p), Type: TypeDir, Mode: 0o755}} }
	sym := func(p, to string) item {
		return item{e: Entry{Path: Name(p), Type: TypeSymlink, Mode: 0o777, Target: Name(to)}}
	}
	hl := func(p, to string) item {
		return item{e: Entry{Path: Name(p), Type: TypeHardlink, Mode: 0o644, Target: Name(to)}}
	}
	root := d(".")
	full := "full-20260101T000000Z"

	cases := []struct {
		name  string
		sets  []craft // the last one is restored
		error string  // "" when the set is restored, confined
	}{
		{"hardlink with ..", []craft{{id: full, items: []item{root, file("a", "x"), hl("b", "../canary/secret")}}}, `hardlink "b": bad target "../canary/secret"`},
		{"hardlink absolute", []craft{{id: full, items: []item{root, file("a", "x"), hl("b", abs)}}}, `bad target`},
		{"hardlink through a symlink", []craft{{id: full, items: []item{root, sym("lnk", canary), hl("z", "lnk/secret")}}}, `restore hardlink z: its target "lnk/secret" is not a file restored earlier`},
		{"hardlink to a directory", []craft{{id: full, items: []item{root, d("d"), hl("z", "d")}}}, `restore hardlink z: its target "d" is not a file restored earlier`},
		{"hardlink to a path not yet restored", []craft{{id: full, items: []item{root, hl("a", "b"), file("b", "x")}}}, `hardlink "a" names a later path "b"`},
		{"hardlink to a path not in the set", []craft{{id: full, items: []item{root, file("b", "x"), hl("c", "a")}}}, `restore hardlink c: its target "a" is not a file restored earlier`},
		{"hardlink to itself", []craft{{id: full, items: []item{root, hl("a", "a")}}}, `names a later path`},
		{"symlink followed by entries beneath it", []craft{{id: full, items: []item{root, sym("lnk", canary), file("lnk/evil", "x")}}}, `"lnk/evil" comes without its parent directory`},
		{"symlink to outside, alone", []craft{{id: full, items: []item{root, sym("lnk", canary), sym("rel", "../canary/secret")}}}, ""},
		{"duplicate paths", []craft{{id: full, items: []item{root, file("a", "x"), file("a", "y")}}}, `"a" after "a" is out of order`},
		{"path with ..", []craft{{id: full, items: []item{root, file("../canary/evil", "x")}}}, `bad path "../canary/evil"`},
		{"absolute path", []craft{{id: full, items: []item{root, file(abs+"2", "x")}}}, `bad path`},
		{"root is a symlink", []craft{{id: full, items: []item{sym(".", canary), file("evil", "x")}}}, `the root is a symlink`},
		{"tar names disagree with the table", []craft{{id: full, items: []item{root, file("a", "x")},
			extra: []rawTar{{name: "../canary/evil", data: "x"}, {name: abs + "2", data: "x"}}}}, ""},
		{"table names what the tar lacks", []craft{{id: full, items: []item{root, {e: Entry{Path: "a", Type: TypeFile, Size: 1, Hash: b3("x"), Volume: 1}}}}}, `has no entry "a"`},
		{".backtory/deleted with .. and absolute names", []craft{{id: full, items: []item{root, file("a", "x")},
			extra: []rawTar{{name: ".backtory/deleted", data: "../canary/secret\n" + abs + "\n"}}}}, ""},
		{"a directory becomes a symlink in a differential", []craft{
			{id: full, items: []item{root, d("d"), file("d/f", "x")}},
			{id: "diff-20260102T000000Z", base: full, items: []item{root, sym("d", canary),
				{e: Entry{Path: "d/f", Type: TypeFile, Mode: 0o644, Size: 1, Change: ChangeUnchanged, BaseVolume: 1}}}},
		}, `"d/f" comes without its parent directory`},
		{"delta basis named outside the source", []craft{
			{id: full, items: []item{root, file("f", "x")}, extra: []rawTar{{name: "../canary/secret", data: "basis"}}},
			{id: "diff-20260102T000000Z", base: full, items: []item{root,
				{e: Entry{Path: "../canary/secret", Type: TypeFile, Mode: 0o644, Size: 1, Change: ChangeDelta, BaseVolume: 1, Volume: 1}}}},
		}, `bad path "../canary/secret"`},
	}
	for _, mode := range []string{"unsealed", "passphrase"} {
		var sealer Sealer
		if mode == "passphrase" {
			pf := filepath.Join(dir, "pass")
			os.WriteFile(pf, []byte("hostile\n"), 0o600)
			box, err := seal.New(seal.Config{Mode: seal.ModePassphrase, PassphraseFile: pf})
			if err != nil {
				t.Fatal(err)
			}
			sealer = box
		}
		for i, c := range cases {
			for _, force := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/force=%v", mode, c.name, force), func(t *testing.T) {
					work := filepath.Join(dir, fmt.Sprintf("%s-%d-%v", mode, i, force))
					os.MkdirAll(filepath.Join(work, hostileCanary), 0o700)
					os.WriteFile(filepath.Join(work, hostileCanary, "secret"), []byte("secret\n"), 0o600)
					// The cases name the canary at dir/canary: make it that one.
					os.RemoveAll(canary)
					os.Symlink(filepath.Join(work, hostileCanary), canary)
					target := filepath.Join(work, "target")
					if force {
						prepareHostileTarget(t, target, canary)
					}
					before := snapshotTree(t, work, target)
					repo := craftRepo(t, filepath.Join(work, "remote"), sealer, c.sets)
					m, _, err := repo.Manifest(context.Background(), c.sets[len(c.sets)-1].id)
					if err != nil {
						t.Fatal(err)
					}
					_, err = repo.Restore(context.Background(), m, RestoreOptions{Target: target, Force: force})
					switch {
					case c.error == "" && err != nil:
						t.Errorf("restore: %v", err)
					case c.error != "" && err == nil:
						t.Errorf("restore succeeded, want an error with %q", c.error)
					case err != nil && (!strings.Contains(err.Error(), c.error) || strings.Contains(err.Error(), "\n")):
						t.Errorf("error %q, want one line with %q", err, c.error)
					}
					if after := snapshotTree(t, work, target); after != before {
						t.Errorf("outside the target changed:\nbefore:\n%s\nafter:\n%s", before, after)
					}
				})
			}
		}
	}
}

// prepareHostileTarget fills a target for --force with entries of other
// types than the sets hold, some of them symlinks to the canary.
func prepareHostileTarget(t *testing.T, target, canary string) {
	t.Helper()
	for _, p := range []string{"d/f", "a/x"} {
		os.MkdirAll(filepath.Join(target, p), 0o755)
	}
	os.Symlink(canary, filepath.Join(target, "lnk"))
	os.Symlink(filepath.Join(canary, "secret"), filepath.Join(target, "b"))
	os.Symlink(filepath.Join(canary, "secret"), filepath.Join(target, "f"))
	os.Symlink(canary, filepath.Join(target, "z"))
	os.Symlink(canary, filepath.Join(target, "c"))
}

// snapshotTree describes everything under dir but target and the remote:
// names, types, modes, owners, times and contents.
func snapshotTree(t *testing.T, dir, target string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == target || p == filepath.Join(dir, "remote") {
			return filepath.SkipDir
		}
		if p == dir {
			return nil // it gains the target and the remote
		}
		var st unix.Stat_t
		unix.Lstat(p, &st)
		fmt.Fprintf(&b, "%s %o %d:%d %d", p, st.Mode, st.Uid, st.Gid, st.Mtim.Nano())
		if de.Type().IsRegular() {
			data, _ := os.ReadFile(p)
			fmt.Fprintf(&b, " %q", data)
		}
		b.WriteByte('\n')
		return nil
	})
	return b.String()
}

// craftRepo writes the sets on a local remote and returns a Repository
// reading them.
func craftRepo(t *testing.T, dir string, sealer Sealer, sets []craft) *Repository {
	t.Helper()
	b, err := remote.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	spool := t.TempDir()
	r := &Repository{Backend: b, Sealer: sealer, SpoolDir: spool, Host: "h", Source: "s"}
	hashes := map[string]string{}
	for _, c := range sets {
		hashes[c.id] = writeCraft(t, r, c, hashes)
	}
	return r
}

// writeCraft writes one crafted set and returns its manifest's hash.
func writeCraft(t *testing.T, r *Repository, c craft, hashes map[string]string) string {
	t.Helper()
	ctx := context.Background()
	sealed := r.Sealer != nil
	setDir := SetDir(r.Host, r.Source, c.id)
	put := func(name string, write func(io.Writer) error) ObjectRef {
		o, err := newObjectWriter(r.SpoolDir, name, Compression{Kind: "none"}, r.Sealer)
		if err != nil {
			t.Fatal(err)
		}
		if err := write(o); err != nil {
			t.Fatal(err)
		}
		s, err := o.Close()
		if err != nil {
			t.Fatal(err)
		}
		f, _ := os.Open(s.path)
		defer os.Remove(s.path)
		defer f.Close()
		if err := r.Backend.Put(ctx, objectPath(setDir, name), f); err != nil {
			t.Fatal(err)
		}
		return s.ref
	}
	vol := put(VolumeName(1, false, sealed), func(w io.Writer) error {
		tw := tar.NewWriter(w)
		for _, it := range c.items {
			switch {
			case it.e.Type == TypeFile && it.data != "":
				writeTar(tw, tarName(it.e.Path, false), it.data)
			case c.stock && it.e.Path != "." && it.e.Type != TypeFile:
				tw.WriteHeader(tarHeader(&it.e))
			}
		}
		for _, x := range c.extra {
			if x.link != "" {
				tw.WriteHeader(&tar.Header{Name: x.name, Typeflag: tar.TypeSymlink, Linkname: x.link, Mode: 0o777})
				continue
			}
			writeTar(tw, x.name, x.data)
		}
		return tw.Close()
	})
	files := put(FilesName(false, sealed), func(w io.Writer) error {
		// Written line by line: the crafted table need not be in order.
		for i := range c.items {
			line, err := json.Marshal(&c.items[i].e)
			if err != nil {
				return err
			}
			w.Write(append(line, '\n'))
		}
		return nil
	})
	m := &Manifest{Format: FormatVersion, ID: c.id, Kind: KindFull, Host: r.Host, Source: r.Source,
		Started: time.Now(), Finished: time.Now(), Compression: "none", Sealed: sealed,
		Files: files, Volumes: []ObjectRef{vol}}
	if c.base != "" {
		m.Kind = KindDiff
		m.Base = &BaseRef{ID: c.base, ManifestSHA256: hashes[c.base]}
	}
	stored, err := encodeManifest(m, r.Sealer)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Backend.Put(ctx, objectPath(setDir, ManifestName(sealed)), bytes.NewReader(stored)); err != nil {
		t.Fatal(err)
	}
	return ManifestHash(stored)
}

func writeTar(tw *tar.Writer, name, data string) {
	tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
	tw.Write([]byte(data))
}

func b3(s string) string {
	h := blake3.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// TestStockToolsScriptRefusesHostileSets runs scripts/restore-with-stock-tools.sh
// (with --unauthenticated: the sets are unsealed) on crafted sets: each is
// refused with an error naming the bad entry, the canary beside the target
// is untouched, and nothing is written through a symlink.
func TestStockToolsScriptRefusesHostileSets(t *testing.T) {
	for _, tool := range []string{"tar", "rdiff"} {
		testenv.NeedTool(t, tool)
	}
	file := func(p, data string) item {
		return item{e: Entry{Path: Name(p), Type: TypeFile, Mode: 0o644, Size: int64(len(data)), Hash: b3(data), Volume: 1}, data: data}
	}
	root := item{e: Entry{Path: ".", Type: TypeDir, Mode: 0o755}}
	full := "full-20260101T000000Z"
	diff := "diff-20260102T000000Z"
	for _, c := range []struct {
		name string
		full []rawTar
		diff []rawTar
		want string
	}{
		{".. in .backtory/deleted", nil, []rawTar{{name: ".backtory/deleted", data: "../canary/secret\x00"}}, "../canary/secret: refusing to delete it"},
		{"absolute name in .backtory/deleted", nil, []rawTar{{name: ".backtory/deleted", data: "@CANARY@/secret\x00"}}, "refusing to delete it"},
		{"deletion through a symlink", []rawTar{{name: "lnk", link: "@CANARY@"}}, []rawTar{{name: ".backtory/deleted", data: "lnk/secret\x00"}}, "lnk/secret: refusing to delete it"},
		{"delta through a symlink", []rawTar{{name: "lnk", link: "@CANARY@"}}, []rawTar{{name: ".backtory/delta/lnk/secret", data: "x"}}, "lnk/secret: refusing to patch it"},
		{"metadata change of a symlink", []rawTar{{name: "lnk", link: "@CANARY@/secret"}}, []rawTar{{name: ".backtory/meta/lnk", data: ""}}, "lnk: refusing to change it"},
		{"member below a symlink of the full", []rawTar{{name: "lnk", link: "@CANARY@"}}, []rawTar{{name: "lnk/evil", data: "x"}}, "a member below lnk, which is a symlink"},
		{"moved from ..", nil, []rawTar{{name: ".backtory/moved/x", data: "x"}, {name: ".backtory/moves", data: "x\x00../canary/secret\x00"}}, "../canary/secret: refusing to read it"},
		{"moved from a symlink", []rawTar{{name: "lnk", link: "@CANARY@/secret"}}, []rawTar{{name: ".backtory/moved/x", data: "x"}, {name: ".backtory/moves", data: "x\x00lnk\x00"}}, "lnk: refusing to read it"},
		{"moved to ..", nil, []rawTar{{name: ".backtory/moved/x", data: "x"}, {name: ".backtory/moves", data: "../canary/evil\x00a\x00"}}, "../canary/evil: refusing to create it"},
		{"moved below a symlink", []rawTar{{name: "lnk", link: "@CANARY@"}}, []rawTar{{name: ".backtory/moved/x", data: "x"}, {name: ".backtory/moves", data: "lnk/evil\x00a\x00"}}, "lnk/evil: refusing to create it"},
		{"member with ..", []rawTar{{name: "a/../../canary/evil", data: "x"}}, nil, "(absolute, or with ..)"},
		{"absolute member", []rawTar{{name: "@CANARY@/evil", data: "x"}}, nil, "(absolute, or with ..)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			work := t.TempDir()
			canary := filepath.Join(work, hostileCanary)
			os.Mkdir(canary, 0o700)
			os.WriteFile(filepath.Join(canary, "secret"), []byte("secret\n"), 0o600)
			fix := func(xs []rawTar) []rawTar {
				var out []rawTar
				for _, x := range xs {
					x.name = strings.ReplaceAll(x.name, "@CANARY@", canary)
					x.link = strings.ReplaceAll(x.link, "@CANARY@", canary)
					x.data = strings.ReplaceAll(x.data, "@CANARY@", canary)
					out = append(out, x)
				}
				return out
			}
			before := snapshotTree(t, work, filepath.Join(work, "target"))
			craftRepo(t, filepath.Join(work, "remote"), nil, []craft{
				{id: full, stock: true, items: []item{root, file("a", "x")}, extra: fix(c.full)},
				{id: diff, stock: true, base: full, items: []item{root, file("a", "y")}, extra: fix(c.diff)},
			})
			sets := filepath.Join(work, "remote", SetDir("h", "s", ""))
			cmd := exec.Command("../scripts/restore-with-stock-tools.sh", "--unauthenticated",
				filepath.Join(sets, full), filepath.Join(sets, diff), filepath.Join(work, "target"))
			b, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(b), c.want) {
				t.Errorf("stock-tools procedure: %v\n%s\nwant an error with %q", err, b, c.want)
			}
			if after := snapshotTree(t, work, filepath.Join(work, "target")); after != before {
				t.Errorf("outside the target changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}
