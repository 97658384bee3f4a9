//go:build !unix

package main

import "testing"

func sendSIGHUP(t *testing.T) { t.Skip("no SIGHUP on this system") }
