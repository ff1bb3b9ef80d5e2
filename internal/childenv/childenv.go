// Package childenv builds the environment of every process backtory starts
// (hooks, snapshot tools, layout capture): its own environment without the
// secrets it may have been given there.
package childenv

import (
	"os"
	"strings"
)

// Secrets are the environment variables that carry secrets to backtory:
// remote.PasswordEnv and seal.PassphraseEnv (the test checks they agree).
var Secrets = []string{"BACKTORY_REMOTE_PASSWORD", "BACKTORY_KEY_PASSPHRASE"}

// Environ returns this process's environment without Secrets, followed by
// extra ("NAME=value"), which override inherited values of the same name.
func Environ(extra ...string) []string {
	drop := map[string]bool{}
	for _, s := range Secrets {
		drop[s] = true
	}
	for _, kv := range extra {
		name, _, _ := strings.Cut(kv, "=")
		drop[name] = true
	}
	var out []string
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); !drop[name] {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}
