package delivery

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/engine/internal/ssrf"
)

// The guarded transport checks the address it actually dials: a name that
// resolves to loopback is refused even though it is not an IP literal (as
// after DNS rebinding). Only loopback is ever dialled here.
func TestGuardedTransportChecksTheDialledAddress(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	rc := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(rc.Close)
	port := strconv.Itoa(rc.Listener.Addr().(*net.TCPAddr).Port)
	post := func(tr http.RoundTripper, u string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader("{}"))
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	guarded, open := NewTransport(false), NewTransport(true)
	t.Cleanup(guarded.CloseIdleConnections)
	t.Cleanup(open.CloseIdleConnections)

	for _, u := range []string{rc.URL, "http://localhost:" + port + "/", "http://[::ffff:127.0.0.1]:" + port + "/"} {
		err := post(guarded, u)
		var blocked *ssrf.BlockedError
		if !errors.As(err, &blocked) {
			t.Errorf("guarded POST %s: error = %v, want *ssrf.BlockedError", u, err)
			continue
		}
		if !ssrf.Blocked(blocked.IP) {
			t.Errorf("guarded POST %s: blocked %s, which is public", u, blocked.IP)
		}
		if msg := describeSendError(err, time.Second); !strings.Contains(msg, "non-public address") {
			t.Errorf("describeSendError = %q", msg)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the guarded transport reached the loopback receiver %d times", n)
	}
	if err := post(open, rc.URL); err != nil {
		t.Fatalf("unguarded POST: %v", err)
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("receiver got %d requests, want 1 from the unguarded transport", n)
	}
}
