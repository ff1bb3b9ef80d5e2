package remote

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrInsecureCredentials is returned for a secret file (a password, an S3
// credentials file, an SSH key) that group or others may read.
var ErrInsecureCredentials = errors.New("readable by group or others")

// readSecretFile reads at most limit bytes of file, a secret that only its
// owner may read; key names the config key in errors ("password file").
func readSecretFile(key, file string, limit int64) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s %s has mode %04o, %w; run: chmod 600 %s", key, file, perm, ErrInsecureCredentials, file)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return b, nil
}
