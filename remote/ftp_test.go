package remote_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/backtory/backtory/remote"
	"github.com/backtory/backtory/remote/remotetest"
)

// ftpServers are the server setups every FTP test runs against.
var ftpServers = []struct{ kind, mode string }{
	{"vsftpd", "plain"},
	{"vsftpd", "explicit"},
	{"vsftpd", "implicit"},
	{"pure-ftpd", "plain"},
	{"pure-ftpd", "explicit"},
}

func TestFTPConformance(t *testing.T) {
	defer remote.SetFTPBackoff(10 * time.Millisecond)()
	for _, srv := range ftpServers {
		t.Run(srv.kind+"-"+srv.mode, func(t *testing.T) {
			s := startFTP(t, srv.kind, srv.mode)
			n := 0
			remotetest.Run(t, func(t *testing.T) remote.Backend {
				n++
				return openFTP(t, s.config(fmt.Sprintf("t%d", n)))
			})
		})
	}
}

func openFTP(t testing.TB, cfg remote.Config) remote.Backend {
	t.Helper()
	b, err := remote.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
