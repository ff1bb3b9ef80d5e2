package remote

import (
	"context"
	"fmt"
	"io"
	"io/fs"
)

// Creator is a Backend that can store an object only if its name is free,
// atomically where the store supports it (S3's conditional write).
type Creator interface {
	// Create is Put that fails with an error wrapping fs.ErrExist when
	// name exists, and then changes nothing.
	Create(ctx context.Context, name string, r io.Reader) error
}

// Create stores r under name unless an object of that name exists (an
// error wrapping fs.ErrExist): with b's own Create where it has one, else
// by checking first, which leaves a window in which a second writer may
// win. Commits (manifests, copies) use it, so that a committed object is
// never overwritten.
func Create(ctx context.Context, b Backend, name string, r io.Reader) error {
	if c, ok := b.(Creator); ok {
		return c.Create(ctx, name, r)
	}
	return checkThenPut(ctx, b, name, r)
}

// checkThenPut is Create for a backend without a conditional write.
func checkThenPut(ctx context.Context, b Backend, name string, r io.Reader) error {
	if _, err := b.Stat(ctx, name); err == nil {
		return fmt.Errorf("create %s: %w", name, fs.ErrExist)
	} else if !IsNotExist(err) {
		return err
	}
	return b.Put(ctx, name, r)
}

// Create passes on to the wrapped backend's Create, tried again as Put is.
func (r *retrying) Create(ctx context.Context, name string, src io.Reader) error {
	c, ok := r.b.(Creator)
	if !ok {
		return checkThenPut(ctx, r, name, src) // Stat and Put of r: retried
	}
	return r.put(ctx, name, src, c.Create)
}
