package dashboard

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/backtory/backtory/remote"
)

func TestParsePasswords(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	h := string(hash)
	for _, tc := range []struct {
		name, in string
		users    []string
		err      string
	}{
		{"one", "admin:" + h + "\n", []string{"admin"}, ""},
		{"comments and blanks", "# users\n\n  admin:" + h + "  \nops:" + h, []string{"admin", "ops"}, ""},
		{"htpasswd -B", "admin:$2y$05$" + h[7:], []string{"admin"}, ""},
		{"empty", "# nobody\n", nil, "no user"},
		{"no colon", "admin\n", nil, "line 1: want user:bcrypt-hash"},
		{"no user", ":" + h, nil, "line 1: want user:bcrypt-hash"},
		{"plain password", "admin:secret\n", nil, "line 1: user admin: not a bcrypt hash"},
		{"md5 htpasswd", "admin:$apr1$abc$def\n", nil, "not a bcrypt hash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pw, err := ParsePasswords([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range tc.users {
				if _, ok := pw[u]; !ok {
					t.Errorf("no user %s", u)
				}
			}
			if len(pw) != len(tc.users) {
				t.Errorf("%d users, want %d", len(pw), len(tc.users))
			}
		})
	}
}

func FuzzParsePasswords(f *testing.F) {
	f.Add([]byte("admin:$2a$04$abcdefghijklmnopqrstuuJ0fB8zq7W8T8h6P0pS9x3W8Uu7f1Yu6\n"))
	f.Add([]byte("# x\n\n:\nadmin\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pw, err := ParsePasswords(data)
		if err == nil && len(pw) == 0 {
			t.Fatal("no error and no user")
		}
	})
}

func TestBasicAuth(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("right"), bcrypt.MinCost)
	h := BasicAuth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("in")) }), Passwords{"admin": hash})
	for _, tc := range []struct {
		user, pass string
		set        bool
		code       int
	}{{"", "", false, 401}, {"admin", "wrong", true, 401}, {"other", "right", true, 401}, {"admin", "", true, 401}, {"admin", "right", true, 200}} {
		req := httptest.NewRequest("GET", "/", nil)
		if tc.set {
			req.SetBasicAuth(tc.user, tc.pass)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.code {
			t.Errorf("%q:%q: %d, want %d", tc.user, tc.pass, rec.Code, tc.code)
		}
		if rec.Code == 401 && rec.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("401 without WWW-Authenticate")
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8420": true, "127.1.2.3:1": true, "[::1]:8420": true, "localhost:80": true,
		"0.0.0.0:8420": false, ":8420": false, "[::]:1": false, "192.168.1.2:80": false, "example.com:80": false, "nonsense": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v", addr, got)
		}
	}
}

func TestReadOnly(t *testing.T) {
	dir := t.TempDir()
	b, err := remote.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := b.Put(ctx, "x", strings.NewReader("data")); err != nil {
		t.Fatal(err)
	}
	ro := ReadOnly(b)
	if err := ro.Put(ctx, "y", strings.NewReader("data")); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Put: %v", err)
	}
	if err := ro.Delete(ctx, "x"); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Delete: %v", err)
	}
	if _, err := ro.Stat(ctx, "x"); err != nil {
		t.Errorf("Stat through ReadOnly: %v", err)
	}
}

func TestLRU(t *testing.T) {
	c := newLRU[int, int](3)
	for i := range 10 {
		c.put(i, i*i)
		c.get(0) // 0 stays the most recently used
	}
	if c.len() != 3 {
		t.Fatalf("len %d, want 3", c.len())
	}
	for k, want := range map[int]bool{0: true, 9: true, 8: true, 7: false, 1: false} {
		if _, ok := c.get(k); ok != want {
			t.Errorf("get(%d): %v, want %v", k, ok, want)
		}
	}
}
