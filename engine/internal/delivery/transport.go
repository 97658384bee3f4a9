package delivery

import (
	"net"
	"net/http"
	"time"

	"github.com/heraldhq/herald/engine/internal/ssrf"
)

// maxResponseHeaderBytes bounds a response's status line and headers: a
// receiver must not make Herald buffer megabytes it will never store.
const maxResponseHeaderBytes = 16 << 10

// NewTransport returns the HTTP transport for attempts: keep-alive pools
// per destination, bounded response headers, no proxy (a proxy would dial
// on Herald's behalf and bypass the guard), and unless allowPrivate a
// dialer that refuses non-public addresses. The check runs on the address
// actually dialled, after DNS, so a name that re-resolves to a private
// address is still refused.
func NewTransport(allowPrivate bool) *http.Transport {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		dialer.Control = ssrf.Control
	}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           1024,
		MaxIdleConnsPerHost:    64,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
		DisableCompression:     true,
	}
}
