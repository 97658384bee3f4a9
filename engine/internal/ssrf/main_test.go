package ssrf

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"testing"
)

// dnsDials counts attempts to reach a DNS server through net.DefaultResolver.
var dnsDials atomic.Int32

// TestMain makes net.DefaultResolver unable to reach any DNS server, so
// that a test that would resolve a name over the network fails instead.
func TestMain(m *testing.M) {
	net.DefaultResolver = &net.Resolver{
		PreferGo: true,
		Dial: func(_ context.Context, network, address string) (net.Conn, error) {
			dnsDials.Add(1)
			return nil, fmt.Errorf("tests must not query DNS (%s %s)", network, address)
		},
	}
	code := m.Run()
	if n := dnsDials.Load(); n > 0 && code == 0 {
		fmt.Fprintf(os.Stderr, "FAIL: tests tried to query DNS %d times\n", n)
		code = 1
	}
	os.Exit(code)
}
