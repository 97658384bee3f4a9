// Command herald is the Herald webhook delivery engine: a server
// (herald serve), a client for its HTTP API, and receiver-side tools for
// signing and verifying Standard Webhooks requests.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-signals
		cancel() // the first SIGINT or SIGTERM shuts down gracefully
		for sig := range signals {
			if sig == os.Interrupt { // Ctrl-C again: the user will not wait
				fmt.Fprintln(os.Stderr, "herald: interrupted twice, exiting now")
				os.Exit(130)
			}
		}
	}()
	os.Exit(exitCode(run(ctx, os.Args[1:], os.Stdout, os.Stderr)))
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
