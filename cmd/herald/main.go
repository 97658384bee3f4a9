// Command herald is the Herald webhook delivery engine: a server
// (herald serve), a client for its HTTP API, and receiver-side tools for
// signing and verifying Standard Webhooks requests.
package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err))
}

// exitCode maps run's error to the process exit status: 0 on success, 2 for
// usage errors, 1 for everything else. The message itself is printed by run.
func exitCode(err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	default:
		return 1
	}
}
