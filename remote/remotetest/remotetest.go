// Package remotetest is the conformance suite every remote.Backend must pass.
// A backend's test calls Run with a function that returns a fresh, empty
// backend; the suite checks atomic Put, Get with offsets, Stat, List,
// Delete and the errors for missing objects.
package remotetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"testing"

	"github.com/backtory/backtory/remote"
)

// Run runs the whole conformance suite against backends made by newBackend.
// Each subtest gets its own backend, so a backend may share one server.
func Run(t *testing.T, newBackend func(t *testing.T) remote.Backend) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackend(t)
			t.Cleanup(func() { b.Close() })
			tc.run(t, context.Background(), b)
		})
	}
}

var cases = []struct {
	name string
	run  func(t *testing.T, ctx context.Context, b remote.Backend)
}{
	{"PutGet", testPutGet},
	{"PutEmpty", testPutEmpty},
	{"PutLarge", testPutLarge},
	{"PutReplaces", testPutReplaces},
	{"PutFailingReaderLeavesNothing", testPutFailing},
	{"GetOffset", testGetOffset},
	{"MissingObject", testMissing},
	{"ListNested", testList},
	{"ListMissingDir", testListMissing},
	{"Delete", testDelete},
	{"CancelledContext", testCancelled},
	{"BadNames", testBadNames},
}

func put(t *testing.T, ctx context.Context, b remote.Backend, name string, data []byte) {
	t.Helper()
	if err := b.Put(ctx, name, bytes.NewReader(data)); err != nil {
		t.Fatalf("Put(%q): %v", name, err)
	}
}

func get(t *testing.T, ctx context.Context, b remote.Backend, name string, off int64) []byte {
	t.Helper()
	rc, err := b.Get(ctx, name, off)
	if err != nil {
		t.Fatalf("Get(%q, %d): %v", name, off, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q, %d): read: %v", name, off, err)
	}
	return data
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func names(t *testing.T, ctx context.Context, b remote.Backend, dir string) []string {
	t.Helper()
	infos, err := b.List(ctx, dir)
	if err != nil {
		t.Fatalf("List(%q): %v", dir, err)
	}
	var out []string
	for _, i := range infos {
		n := i.Name
		if i.IsDir {
			n += "/"
		}
		out = append(out, n)
	}
	return out
}

func testPutGet(t *testing.T, ctx context.Context, b remote.Backend) {
	data := []byte("hello, backup\n")
	put(t, ctx, b, "host/src/full-1/vol-000001", data)
	if got := get(t, ctx, b, "host/src/full-1/vol-000001", 0); !bytes.Equal(got, data) {
		t.Fatalf("Get returned %q, want %q", got, data)
	}
	info, err := b.Stat(ctx, "host/src/full-1/vol-000001")
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(data)) || info.Name != "vol-000001" || info.IsDir {
		t.Fatalf("Stat = %+v, want size %d name vol-000001", info, len(data))
	}
}

func testPutEmpty(t *testing.T, ctx context.Context, b remote.Backend) {
	put(t, ctx, b, "empty", nil)
	if got := get(t, ctx, b, "empty", 0); len(got) != 0 {
		t.Fatalf("Get of empty object returned %d bytes", len(got))
	}
	if info, err := b.Stat(ctx, "empty"); err != nil || info.Size != 0 {
		t.Fatalf("Stat(empty) = %+v, %v", info, err)
	}
}

func testPutLarge(t *testing.T, ctx context.Context, b remote.Backend) {
	data := random(9<<20 + 17)
	put(t, ctx, b, "a/large.bin", data)
	if got := get(t, ctx, b, "a/large.bin", 0); !bytes.Equal(got, data) {
		t.Fatalf("large object differs after round trip (%d vs %d bytes)", len(got), len(data))
	}
}

func testPutReplaces(t *testing.T, ctx context.Context, b remote.Backend) {
	put(t, ctx, b, "x", random(100000))
	put(t, ctx, b, "x", []byte("short"))
	if got := get(t, ctx, b, "x", 0); string(got) != "short" {
		t.Fatalf("after replace Get = %d bytes, want \"short\"", len(got))
	}
}

type failingReader struct {
	r io.Reader
	n int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("injected read failure")
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

func testPutFailing(t *testing.T, ctx context.Context, b remote.Backend) {
	data := random(1 << 20)
	err := b.Put(ctx, "d/obj", &failingReader{r: bytes.NewReader(data), n: 300000})
	if err == nil {
		t.Fatal("Put from a failing reader succeeded")
	}
	if _, err := b.Stat(ctx, "d/obj"); !remote.IsNotExist(err) {
		t.Fatalf("after a failed Put, Stat = %v, want not-exist", err)
	}
	// A later Put of the same name works and replaces any leftover.
	put(t, ctx, b, "d/obj", data)
	if got := get(t, ctx, b, "d/obj", 0); !bytes.Equal(got, data) {
		t.Fatal("Put after a failed Put stored wrong data")
	}
	for _, n := range names(t, ctx, b, "d") {
		if remote.IsTemp(n) {
			t.Fatalf("a successful Put left the temporary object %q", n)
		}
	}
}

func testGetOffset(t *testing.T, ctx context.Context, b remote.Backend) {
	data := random(200000)
	put(t, ctx, b, "off", data)
	for _, off := range []int64{0, 1, 65536, 199999, 200000} {
		if got := get(t, ctx, b, "off", off); !bytes.Equal(got, data[off:]) {
			t.Fatalf("Get at offset %d: %d bytes, want %d", off, len(got), len(data)-int(off))
		}
	}
}

func testMissing(t *testing.T, ctx context.Context, b remote.Backend) {
	if _, err := b.Get(ctx, "nope/none", 0); !remote.IsNotExist(err) {
		t.Errorf("Get of missing object: %v, want not-exist", err)
	}
	if _, err := b.Stat(ctx, "nope"); !remote.IsNotExist(err) {
		t.Errorf("Stat of missing object: %v, want not-exist", err)
	}
	if err := b.Delete(ctx, "nope"); !remote.IsNotExist(err) {
		t.Errorf("Delete of missing object: %v, want not-exist", err)
	}
}

func testList(t *testing.T, ctx context.Context, b remote.Backend) {
	put(t, ctx, b, "h/s/full-2/b", []byte("b"))
	put(t, ctx, b, "h/s/full-2/a", []byte("aa"))
	put(t, ctx, b, "h/s/diff-3/a", []byte("a"))
	put(t, ctx, b, "h/s/recover.sh", []byte("#!/bin/sh\n"))
	want := []string{"diff-3/", "full-2/", "recover.sh"}
	if got := names(t, ctx, b, "h/s"); !equal(got, want) {
		t.Fatalf("List(h/s) = %q, want %q", got, want)
	}
	infos, err := b.List(ctx, "h/s/full-2")
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 || infos[0].Name != "a" || infos[0].Size != 2 || infos[1].Name != "b" || infos[1].Size != 1 {
		t.Fatalf("List(h/s/full-2) = %+v", infos)
	}
	if got := names(t, ctx, b, ""); !equal(got, []string{"h/"}) {
		t.Fatalf("List(root) = %q, want [h/]", got)
	}
}

func testListMissing(t *testing.T, ctx context.Context, b remote.Backend) {
	infos, err := b.List(ctx, "no/such/dir")
	if err != nil || len(infos) != 0 {
		t.Fatalf("List of a missing dir = %v, %v; want empty, nil", infos, err)
	}
}

func testDelete(t *testing.T, ctx context.Context, b remote.Backend) {
	put(t, ctx, b, "del/one", []byte("1"))
	put(t, ctx, b, "del/two", []byte("2"))
	if err := b.Delete(ctx, "del/one"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(ctx, "del/one"); !remote.IsNotExist(err) {
		t.Fatalf("Stat after Delete: %v", err)
	}
	if got := names(t, ctx, b, "del"); !equal(got, []string{"two"}) {
		t.Fatalf("List after Delete = %q", got)
	}
}

func testCancelled(t *testing.T, ctx context.Context, b remote.Backend) {
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.Put(cctx, "cancelled", bytes.NewReader(random(1<<20))); err == nil {
		t.Fatal("Put with a cancelled context succeeded")
	}
	if _, err := b.Stat(ctx, "cancelled"); !remote.IsNotExist(err) {
		t.Fatalf("a cancelled Put left an object: %v", err)
	}
}

func testBadNames(t *testing.T, ctx context.Context, b remote.Backend) {
	for _, n := range []string{"", "/abs", "../up", "a/../../up"} {
		if err := b.Put(ctx, n, bytes.NewReader(nil)); err == nil {
			t.Errorf("Put(%q) succeeded, want an error", n)
		}
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
