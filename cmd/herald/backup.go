package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/heraldhq/herald/engine"
)

func init() {
	commands["backup"] = command{summary: "save a consistent snapshot of the whole cluster state to a file", run: runBackup}
	commands["restore"] = command{summary: "make a fresh single-node data dir from a backup file", run: runRestore}
}

func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("backup", "--out FILE\n\n"+
		"Saves GET /v1/backup, a consistent snapshot of the whole state (endpoints and their\n"+
		"secrets, signing keys, messages and pending deliveries, idempotency keys) from any\n"+
		"node, to FILE (mode 0600; it holds secrets). herald restore turns it into a data dir.", stderr)
	cf := addClientFlags(fs)
	out := fs.String("out", "", "the `file` to write; it must not exist (required)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if err := exactArgs("backup", pos); err != nil {
		return err
	}
	if *out == "" {
		return usagef("backup: --out FILE is required")
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	// Written beside its final name and renamed when complete, so that FILE
	// is a whole backup or absent.
	partial := *out + ".partial"
	f, err := os.OpenFile(partial, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("backup: %s: %w", partial, pathErr(err))
	}
	n, err := c.download(ctx, "/v1/backup", f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if _, serr := os.Stat(*out); serr == nil {
			err = fmt.Errorf("%s exists already", *out)
		} else {
			err = os.Rename(partial, *out)
		}
	}
	if err != nil {
		os.Remove(partial)
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s (%d bytes)\n", *out, n)
	return nil
}

func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("restore", "--data-dir DIR FILE\n\n"+
		"Makes DIR, which must be empty or absent, the data dir of a new single-node cluster\n"+
		"holding the state saved by herald backup in FILE. Start it with herald serve\n"+
		"--data-dir DIR (with the same --seal-key-file if the cluster had one), then grow it\n"+
		"with herald cluster join.", stderr)
	dataDir := fs.String("data-dir", "", "the new data `dir` (required)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if err := exactArgs("restore", pos, "FILE"); err != nil {
		return err
	}
	if *dataDir == "" {
		return usagef("restore: --data-dir DIR is required")
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return fmt.Errorf("restore: %s: %w", pos[0], pathErr(err))
	}
	defer f.Close()
	if err := engine.RestoreDataDir(*dataDir, f); err != nil {
		msg := err.Error()
		for _, prefix := range []string{"engine: ", "store: ", "restore: "} {
			msg = strings.TrimPrefix(msg, prefix)
		}
		return fmt.Errorf("restore: %s", msg)
	}
	abs, _ := filepath.Abs(*dataDir)
	fmt.Fprintf(stdout, "restored %s into %s\nstart it with: herald serve --data-dir %s\n", pos[0], abs, *dataDir)
	return nil
}
