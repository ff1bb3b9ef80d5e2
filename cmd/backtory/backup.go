package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/backtory/backtory/archive"
)

func init() {
	register(command{name: "backup", summary: "back up every source (a full, or a differential against the last full)", run: runBackup})
}

func runBackup(ctx context.Context, args []string) error {
	var g globals
	fs := pflag.NewFlagSet("backup", pflag.ContinueOnError)
	g.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("backup takes no arguments (got %q)", fs.Arg(0))
	}
	cfg, log, err := g.setup()
	if err != nil {
		return err
	}
	srcs, err := g.sources(cfg)
	if err != nil {
		return err
	}
	for _, s := range srcs {
		if fi, err := os.Stat(s.Path); err != nil || !fi.IsDir() {
			return usagef("%s:%d: source %s: path %s is not a directory that exists", cfg.path, cfg.line("sources"), s.Name, s.Path)
		}
	}
	b, err := openRemote(ctx, cfg)
	if err != nil {
		return err
	}
	defer b.Close()
	spool, err := spoolDir(cfg)
	if err != nil {
		return err
	}
	comp, _ := archive.ParseCompression(cfg.Compression)
	warnings := 0
	for _, s := range srcs {
		log := log.With("source", s.Name)
		opt := archive.BackupOptions{
			Host:        cfg.Host,
			Source:      s.Name,
			SourcePath:  s.Path,
			Root:        s.Path,
			Snapshot:    "none: live tree",
			Exclude:     s.Exclude,
			CrossMounts: s.CrossMounts,
			VolumeSize:  int64(cfg.VolumeSize),
			Compression: comp,
			SpoolDir:    spool,
			Uploads:     2,
			Tool:        "backtory " + version,
			Warn: func(path, msg string) {
				log.Warn(msg, "path", path)
			},
		}
		m, err := archive.Backup(ctx, b, opt)
		if err != nil {
			return fmt.Errorf("backup of source %s: %w", s.Name, err)
		}
		warnings += m.Stats.Warnings
		log.Info("backup done", "set", m.ID, "files", fmt.Sprint(m.Stats.Files),
			"bytes", humanBytes(m.Stats.Bytes), "stored", humanBytes(m.Stats.StoredBytes),
			"seconds", fmt.Sprintf("%.1f", m.Finished.Sub(m.Started).Seconds()))
	}
	if warnings > 0 {
		return warningsError{fmt.Sprintf("backup done with %d warnings (see above): some paths were not archived exactly", warnings)}
	}
	return nil
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
