package childenv_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/backtory/backtory/archive/seal"
	"github.com/backtory/backtory/internal/childenv"
	"github.com/backtory/backtory/remote"
)

func TestSecretsAreTheOnesRead(t *testing.T) {
	for _, name := range []string{remote.PasswordEnv, seal.PassphraseEnv} {
		if !slices.Contains(childenv.Secrets, name) {
			t.Errorf("%s is read as a secret but not in childenv.Secrets", name)
		}
	}
}

func TestEnvironDropsSecrets(t *testing.T) {
	t.Setenv("BACKTORY_REMOTE_PASSWORD", "pw")
	t.Setenv("BACKTORY_KEY_PASSPHRASE", "pp")
	t.Setenv("LC_ALL", "de_DE.UTF-8")
	t.Setenv("KEEP_ME", "1")
	env := childenv.Environ("LC_ALL=C")
	for _, kv := range env {
		if strings.HasPrefix(kv, "BACKTORY_REMOTE_PASSWORD=") || strings.HasPrefix(kv, "BACKTORY_KEY_PASSPHRASE=") {
			t.Errorf("kept %s", kv)
		}
		if kv == "LC_ALL=de_DE.UTF-8" {
			t.Error("the inherited LC_ALL was not overridden")
		}
	}
	if !slices.Contains(env, "KEEP_ME=1") || !slices.Contains(env, "LC_ALL=C") {
		t.Errorf("environment %v lacks KEEP_ME=1 or LC_ALL=C", env)
	}
}
