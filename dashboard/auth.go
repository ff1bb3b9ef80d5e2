package dashboard

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/backtory/backtory/remote"
)

// Passwords are the users allowed in, with their bcrypt hashes.
type Passwords map[string][]byte

// maxPasswordFile bounds a password file read into memory.
const maxPasswordFile = 1 << 20

// ReadPasswords reads a password file: "user:bcrypt-hash" lines, as
// `htpasswd -B` writes them; empty lines and lines starting with # are
// skipped.
func ReadPasswords(path string) (Passwords, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxPasswordFile+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > maxPasswordFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxPasswordFile)
	}
	pw, err := ParsePasswords(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pw, nil
}

// ParsePasswords parses the contents of a password file.
func ParsePasswords(raw []byte) (Passwords, error) {
	pw := Passwords{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("line %d: want user:bcrypt-hash", n)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("line %d: user %s: not a bcrypt hash (make one with htpasswd -nB %s): %v", n, user, user, err)
		}
		pw[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(pw) == 0 {
		return nil, errors.New("no user")
	}
	return pw, nil
}

// BasicAuth lets through the requests with a user and password of pw
// (HTTP basic authentication), and answers 401 to the others.
func BasicAuth(next http.Handler, pw Passwords) http.Handler {
	// A hash to compare with when the user is unknown, so that the time
	// taken does not tell which users exist.
	dummy, _ := bcrypt.GenerateFromPassword([]byte("x"), bcrypt.MinCost)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		hash, known := pw[user]
		if !known {
			hash = dummy
		}
		err := bcrypt.CompareHashAndPassword(hash, []byte(pass))
		if !ok || !known || err != nil {
			w.Header().Set("WWW-Authenticate", `Basic realm="backtory", charset="UTF-8"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// IsLoopback says whether a listen address (host:port) only accepts
// connections from this machine.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ErrReadOnly is what a ReadOnly backend answers to a write.
var ErrReadOnly = errors.New("the dashboard never writes to the remote")

// ReadOnly wraps a backend so that Put and Delete fail: the dashboard
// reads the remote and nothing else.
func ReadOnly(b remote.Backend) remote.Backend { return readOnly{b} }

type readOnly struct{ remote.Backend }

func (readOnly) Put(context.Context, string, io.Reader) error { return ErrReadOnly }
func (readOnly) Delete(context.Context, string) error         { return ErrReadOnly }
