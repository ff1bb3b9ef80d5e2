package main

import (
	"errors"

	"github.com/backtory/backtory/state"
)

// acquireLock takes the lock of one run at a time in stateDir (see
// state.Dir.Lock); another run holding it ends this one with exit 4.
func acquireLock(stateDir string) (release func(), err error) {
	release, err = state.New(stateDir).Lock()
	if errors.Is(err, state.ErrLocked) {
		return nil, lockedError{err}
	}
	return release, err
}
