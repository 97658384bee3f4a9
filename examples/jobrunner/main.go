// Command jobrunner is a small job service, in the shape of the Gemini API,
// that sends its webhooks with Herald embedded as a library.
//
// Its jobs (batches, background interactions, video generations) take a
// while; instead of polling for them, clients get a webhook when one ends.
// A project registers webhooks, signed with HMAC secrets; a job may instead
// name its own webhook_config URIs, signed with keys the job runner
// publishes as a JWKS. The jobs are simulated: each takes the time its
// request asks for, then succeeds or fails as asked.
//
//	go run ./examples/jobrunner --allow-private-networks
//
// See README.md for a walkthrough.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/heraldhq/herald/engine"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stderr, nil)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.As(err, new(usageError)):
		fmt.Fprintln(os.Stderr, "jobrunner:", err)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "jobrunner:", err)
		os.Exit(1)
	}
}

// usageError is a mistake on the command line.
type usageError struct{ error }

// run runs the job runner until ctx ends, then stops it cleanly. It calls
// ready, if set, with the API's base URL once it serves.
func run(ctx context.Context, args []string, stderr io.Writer, ready func(url string)) error {
	fs := flag.NewFlagSet("jobrunner", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8085", "listen `address`, on loopback: the API has no authentication")
	dataDir := fs.String("data-dir", "jobrunner-data", "`directory` for the jobs (jobs.json) and Herald's state (herald/)")
	allowPrivate := fs.Bool("allow-private-networks", false, "let webhooks go to loopback and private addresses, such as a receiver on this machine")
	overrideSig := fs.String("override-signature", engine.SignatureEd25519,
		"how deliveries to webhook_config URIs are signed: v1a (Ed25519) or jwt (RS256, as Gemini signs them)")
	fs.SetOutput(io.Discard) // errors are reported in one line, by main
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fmt.Fprintln(stderr, "usage: jobrunner [flags]")
			fs.PrintDefaults()
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if *overrideSig != engine.SignatureEd25519 && *overrideSig != engine.SignatureJWT {
		return usageError{fmt.Errorf("--override-signature must be v1a or jwt, not %q", *overrideSig)}
	}

	if host, _, err := net.SplitHostPort(*addr); err != nil || !isLoopback(host) {
		return usageError{fmt.Errorf("--addr %s is not a loopback address: this example's API has no authentication", *addr)}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	url := "http://" + ln.Addr().String()

	log := slog.New(slog.NewTextHandler(stderr, nil))
	heraldLog := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := openApp(ctx, config{DataDir: *dataDir, AllowPrivateNetworks: *allowPrivate,
		OverrideSignature: *overrideSig, PublicURL: url, Logger: log, HeraldLogger: heraldLog})
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: a.handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("serving the job API", "url", url, "data_dir", *dataDir)
	if ready != nil {
		ready(url)
	}

	select {
	case err = <-served:
	case <-ctx.Done():
		log.Info("stopping")
	}
	// Stop taking requests, then stop the jobs and Herald. Deliveries that
	// are due later wait in Herald's log for the next start.
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(err, srv.Shutdown(stopCtx), a.close(stopCtx))
}
