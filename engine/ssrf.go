package engine

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// maxURLLength bounds destination URLs.
const maxURLLength = 2048

// Address ranges that are not public unicast beyond what net/netip's
// predicates cover.
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),     // "this network"
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),  // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),   // reserved, and broadcast
	netip.MustParsePrefix("64:ff9b::/96"),  // NAT64 can reach private IPv4
}

// blockedAddr reports whether ip is loopback, private, link-local,
// multicast, unspecified or otherwise not a public unicast address.
func blockedAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return true
	}
	for _, p := range blockedPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// blockedAddrError is the error for a destination that resolves to a
// non-public address.
type blockedAddrError struct {
	host string
	ip   netip.Addr
}

func (e *blockedAddrError) Error() string {
	if e.host != "" && e.host != e.ip.String() {
		return fmt.Sprintf("%s resolves to %s, a non-public address (see --allow-private-networks)", e.host, e.ip)
	}
	return fmt.Sprintf("%s is a non-public address (see --allow-private-networks)", e.ip)
}

// checkURL validates a destination URL: absolute http or https, with a host,
// no credentials, and (unless allowPrivate) not resolving to a non-public
// address. A host that does not resolve yet is accepted: the dialer checks
// again at every connection.
func checkURL(ctx context.Context, raw string, allowPrivate bool) error {
	if len(raw) > maxURLLength {
		return fmt.Errorf("longer than %d bytes", maxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme must be http or https")
	}
	if u.Hostname() == "" {
		return fmt.Errorf("has no host")
	}
	if u.User != nil {
		return fmt.Errorf("must not contain credentials")
	}
	if allowPrivate {
		return nil
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		if blockedAddr(ip) {
			return &blockedAddrError{ip: ip}
		}
		return nil
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return &blockedAddrError{host: host, ip: netip.IPv6Loopback()}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	for _, ip := range addrs {
		if blockedAddr(ip) {
			return &blockedAddrError{host: host, ip: ip}
		}
	}
	return nil
}

// newTransport returns the HTTP transport for attempts: keep-alive pools per
// destination, no proxy (a proxy would dial on our behalf and bypass the
// guard), and unless allowPrivate a dialer that refuses non-public
// addresses. The check runs on the address actually dialled, after DNS, so
// a name that re-resolves to a private address is still refused.
func newTransport(allowPrivate bool) *http.Transport {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("dial %s: %w", address, err)
			}
			if blockedAddr(ap.Addr()) {
				return &blockedAddrError{ip: ap.Addr().Unmap()}
			}
			return nil
		}
	}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
}
