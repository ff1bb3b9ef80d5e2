package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"
)

// beginPut is the start every network backend's Put shares: it checks
// name, wraps r as an upload and waits for a free slot of slots (one per
// parallel upload); done frees the slot.
func beginPut(ctx context.Context, name string, r io.Reader, slots chan struct{}) (clean string, src *upload, done func(), err error) {
	clean, err = CleanName(name)
	if err != nil {
		return "", nil, nil, err
	}
	if err := ctx.Err(); err != nil {
		return "", nil, nil, fmt.Errorf("put %s: %w", name, err)
	}
	if src, err = newUpload(r); err != nil {
		return "", nil, nil, fmt.Errorf("put %s: %w", name, err)
	}
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return "", nil, nil, fmt.Errorf("put %s: %w", name, ctx.Err())
	}
	return clean, src, func() { <-slots }, nil
}

// abandonPartial reports whether the partial temporary object of a Put
// that failed with err should be removed rather than kept to resume: the
// source cannot be sent again from where it stopped, failed itself, or
// the server has no room for it (diskFull).
func abandonPartial(src *upload, err error, diskFull bool) bool {
	return src.rs == nil || diskFull || errors.As(err, new(*readError))
}

// dirCache remembers the directories known to exist on a server, so that
// each is made once.
type dirCache struct{ m sync.Map }

// ensure makes dir and its missing parents with mkdir (which may fail
// when the directory exists: the upload into it will say).
func (d *dirCache) ensure(dir string, mkdir func(string) error) error {
	if dir == "/" || dir == "." {
		return nil
	}
	if _, ok := d.m.Load(dir); ok {
		return nil
	}
	if err := d.ensure(path.Dir(dir), mkdir); err != nil {
		return err
	}
	if err := mkdir(dir); err != nil {
		return err
	}
	d.m.Store(dir, struct{}{})
	return nil
}

// forget drops dir and its parents (one of them may have been removed).
func (d *dirCache) forget(dir string) {
	for ; dir != "/" && dir != "."; dir = path.Dir(dir) {
		d.m.Delete(dir)
	}
}

// removeEmptyParents removes the directories above the object full, up to
// root, as long as rmdir succeeds (they are empty).
func (d *dirCache) removeEmptyParents(root, full string, rmdir func(string) error) {
	for dir := path.Dir(full); dir != root && strings.HasPrefix(dir, root); dir = path.Dir(dir) {
		if rmdir(dir) != nil {
			break // not empty
		}
		d.m.Delete(dir)
	}
}
