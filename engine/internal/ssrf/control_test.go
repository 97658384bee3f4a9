package ssrf

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestControlRefusesLoopbackDial dials a listener on 127.0.0.1 (the only
// address tests dial) through a dialer with the Control hook, as the engine
// builds it without --allow-private-networks, and checks that no
// connection is made; then through a dialer without it, as with the flag.
func TestControlRefusesLoopbackDial(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan string, 16) // remote addresses
	go func() {
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c.RemoteAddr().String()
			c.Close()
		}
	}()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)

	guarded := &net.Dialer{Timeout: 5 * time.Second, Control: Control}
	for _, addr := range []string{"127.0.0.1:" + port, "[::ffff:127.0.0.1]:" + port} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := guarded.DialContext(ctx, "tcp", addr)
		cancel()
		if err == nil {
			c.Close()
			t.Fatalf("guarded dial %s succeeded", addr)
		}
		var be *BlockedError
		if !errors.As(err, &be) || !Blocked(be.IP) || be.IP.Unmap().String() != "127.0.0.1" {
			t.Errorf("guarded dial %s: error = %v, want *BlockedError for 127.0.0.1", addr, err)
		} else if !strings.Contains(err.Error(), "non-public address") {
			t.Errorf("guarded dial %s: error = %q", addr, err)
		}
	}

	// The listener works: a dialer without the hook connects, and that
	// connection is the first and only one the listener sees.
	open := &net.Dialer{Timeout: 5 * time.Second}
	c, err := open.Dial("tcp4", "127.0.0.1:"+port)
	if err != nil {
		t.Fatalf("unguarded dial: %v", err)
	}
	defer c.Close()
	select {
	case remote := <-accepted:
		if remote != c.LocalAddr().String() {
			t.Fatalf("listener accepted a connection from %s, before the unguarded one from %s", remote, c.LocalAddr())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the unguarded connection was not accepted")
	}
	ln.Close()
	for remote := range accepted {
		t.Errorf("listener accepted another connection, from %s", remote)
	}
}
