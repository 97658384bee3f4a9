package ssrf

import (
	"fmt"
	"net/netip"
	"syscall"
)

// BlockedError reports a destination that is, or resolves to, a non-public
// address. Host is the name that was resolved, or "" when the destination
// was an address (an IP literal, or the address being dialled). IP is the
// non-public address, or the zero Addr when Host is a name that is local by
// definition (localhost, .local, ...; see CheckURL) and was not resolved.
type BlockedError struct {
	Host string
	IP   netip.Addr
}

func (e *BlockedError) Error() string {
	const hint = " (see --allow-private-networks)"
	if !e.IP.IsValid() {
		return fmt.Sprintf("%s is a local-only name, a non-public address%s", e.Host, hint)
	}
	addr := e.IP.String() + describeEmbedding(e.IP)
	if e.Host != "" && e.Host != e.IP.String() {
		return fmt.Sprintf("%s resolves to %s, a non-public address%s", e.Host, addr, hint)
	}
	return fmt.Sprintf("%s is a non-public address%s", addr, hint)
}

// Control is a net.Dialer.Control hook that refuses, with *BlockedError,
// to connect to a Blocked address. It sees the address after name
// resolution, just before the connection is made, so it holds even when a
// name's answers change after CheckURL accepted it (DNS rebinding). An
// address that is not an IP address and port (a Unix socket path, say) is
// refused too.
func Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("ssrf: dial %s %s: not an IP address and port: %w", network, address, err)
	}
	if Blocked(ap.Addr()) {
		return &BlockedError{IP: ap.Addr()}
	}
	return nil
}
