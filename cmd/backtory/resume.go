package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"os"
	"strconv"
	"syscall"

	"github.com/backtory/backtory/archive"
	"github.com/backtory/backtory/policy"
	"github.com/backtory/backtory/snapshot"
)

// resumable returns the archive.Resume of a source's backup: with From set
// when an interrupted full of the source can be resumed (every run but
// --diff resumes it first; see README, "Interrupted backups"), and a
// one-line notice when a checkpoint was dropped instead.
func (r *backupRun) resumable(ctx context.Context, repo *archive.Repository, s *Source, log *slog.Logger) (*archive.Resume, error) {
	res := &archive.Resume{Dir: r.state.ResumeDir(r.cfg.Host, s.Name), Fingerprint: r.fingerprint(s), Checkpointed: killAfterVolumes()}
	if r.force == policy.ForceDiff {
		return res, nil // the checkpoint stays for a later run
	}
	// Only the live tree can be read again by another run: a snapshot
	// does not outlive its run yet, so a full read from one starts afresh.
	label := ""
	if s.spec().Kind == "" || s.spec().Kind == snapshot.KindNone {
		label = liveTreeLabel
	}
	ck, reason, err := repo.CheckResume(ctx, res.Dir, res.Fingerprint, label)
	if err != nil {
		return nil, err
	}
	if reason != "" {
		log.Warn("not resuming the interrupted full: " + reason + "; writing a new one")
	}
	if ck != nil {
		log.Info("resuming the interrupted full", "set", ck.ID, "volumes", len(ck.Volumes), "after", string(ck.After))
	}
	res.From = ck
	return res, nil
}

// fingerprint is what must be the same for a run to resume a source's
// interrupted full: what decides the bytes of the set (the source, its
// excludes, compression, the keys).
func (r *backupRun) fingerprint(s *Source) string {
	signer := ""
	if b, ok := r.sealer.(interface{ SignerFingerprint() string }); ok {
		signer = b.SignerFingerprint()
	}
	b, _ := json.Marshal(struct {
		Host, Source, Path, Compression, Signer string
		Exclude                                 []string
		CrossMounts                             bool
		Snapshot                                string
		Encryption                              any
	}{r.cfg.Host, s.Name, s.Path, r.cfg.Compression, signer, r.excludes(s), s.CrossMounts, s.Snapshot, r.cfg.Encryption})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// killAfterVolumes is a fault point for tests only: with
// BACKTORY_TEST_KILL_AFTER_VOLUMES=N the process kills itself with SIGKILL
// once a checkpoint holds N volumes.
func killAfterVolumes() func(int) {
	n, err := strconv.Atoi(os.Getenv("BACKTORY_TEST_KILL_AFTER_VOLUMES"))
	if err != nil || n <= 0 {
		return nil
	}
	return func(v int) {
		if v >= n {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
}
