//go:build unix

package main

import (
	"os"
	"syscall"
	"testing"
)

// sendSIGHUP sends this process a SIGHUP, as an operator would send serve
// one; a serve with reloaders running in the test catches it.
func sendSIGHUP(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}
