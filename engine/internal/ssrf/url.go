package ssrf

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/heraldhq/herald/store"
)

// lookupTimeout bounds the DNS lookup of CheckURL.
const lookupTimeout = 5 * time.Second

// resolver looks names up; *net.Resolver is one.
type resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// checker is CheckURL with its resolver and lookup timeout injected.
type checker struct {
	resolver resolver
	timeout  time.Duration
}

// CheckURL validates a destination URL when it is registered. The URL must
// pass store.CheckURL (at most 2048 bytes, absolute, http or https, with a
// host and without credentials: the state machine applies the same check),
// and its host must be written unambiguously (see
// below). Unless allowPrivate, its host must also not be a non-public IP
// address, a name that is local by definition, or a name that resolves to
// a non-public address; those errors are *BlockedError.
//
// A name is resolved with net.DefaultResolver, waiting at most 5 seconds,
// and refused if any of its addresses is Blocked. A name that does not
// resolve (yet) is accepted: the dialer checks again at every connection
// (see Control), which is the check that counts.
//
// Whatever allowPrivate says, these hosts are refused, as different
// software reads them differently and none is ever needed:
//
//   - IPv4 addresses in any notation but dotted decimal, which browsers
//     (the WHATWG URL Standard) and inet_aton(3) accept but net/netip does
//     not: 2130706433, 0x7f000001, 0177.0.0.1, 127.1, 10.1.1, 0x7f.1,
//     127.0.0.1. (trailing dot), 010.0.0.1 (leading zero, octal). The
//     error gives the dotted-decimal form. Any host whose last label is
//     numeric (all digits, or 0x and hex digits) is an IPv4 address or
//     invalid, as no top-level domain is numeric, and is refused unless it
//     is a dotted-decimal address.
//   - IPv6 zone identifiers, as in http://[fe80::1%25eth0]/: a zone names
//     an interface of the sending machine, which differs across a cluster.
//   - Hosts with non-ASCII characters. The HTTP client maps them through
//     IDNA (UTS #46) before dialling, which turns fullwidth and other
//     compatibility characters into ASCII (１２７.０.０.１ becomes
//     127.0.0.1), so the name looked up here would not be the name dialled.
//     Internationalised names must be written in their ASCII (xn--) form.
//
// Unless allowPrivate, these names are refused without being resolved,
// since they resolve only through local means (hosts files, search
// domains, multicast DNS, the local network's DNS) and never to a public
// Internet host:
//
//   - localhost and names under it (RFC 6761 §6.3);
//   - names under .local (multicast DNS, RFC 6762);
//   - names under .home.arpa (home networks, RFC 8375);
//   - names under .internal (reserved by ICANN for private use, 2024);
//   - names under .localdomain (not standardised, but the conventional
//     local domain of hosts files, as in localhost.localdomain);
//   - single-label names such as "metadata" or "intranet", which are
//     completed with the local search domains and never name a public
//     host (dotless domains are not used on the Internet, RFC 7085).
//
// Other special-use names (.test, .example, .invalid, .onion) are resolved
// like any name: they are either public or never resolve.
func CheckURL(ctx context.Context, raw string, allowPrivate bool) error {
	return checker{resolver: net.DefaultResolver, timeout: lookupTimeout}.checkURL(ctx, raw, allowPrivate)
}

func (c checker) checkURL(ctx context.Context, raw string, allowPrivate bool) error {
	if err := store.CheckURL(raw); err != nil {
		var inv *store.InvalidError
		if errors.As(err, &inv) {
			return errors.New(inv.Msg)
		}
		return err
	}
	u, _ := url.Parse(raw) // it parsed in CheckURL
	host := u.Hostname()
	ip, err := parseHost(host)
	if err != nil {
		return err
	}
	if allowPrivate {
		return nil
	}
	if ip.IsValid() {
		if Blocked(ip) {
			return &BlockedError{IP: ip}
		}
		return nil
	}
	if localName(host) {
		return &BlockedError{Host: host}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	addrs, err := c.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if Blocked(a) {
			return &BlockedError{Host: host, IP: a}
		}
	}
	return nil
}

// parseHost checks that host, a URL's Hostname, is written unambiguously
// (see CheckURL), and returns its address if it is an IP address literal,
// or the zero Addr if it is a name.
func parseHost(host string) (netip.Addr, error) {
	for i := 0; i < len(host); i++ {
		if host[i] >= 0x80 {
			return netip.Addr{}, fmt.Errorf("host %q must be ASCII: write internationalised domain names in their xn-- form", host)
		}
	}
	if strings.Contains(host, "%") {
		return netip.Addr{}, fmt.Errorf("host %q must not have an IPv6 zone identifier", host)
	}
	if strings.Contains(host, ":") {
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is6() {
			return netip.Addr{}, fmt.Errorf("host %q is not a valid IPv6 address", host)
		}
		return ip, nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip, nil
	}
	if endsInNumber(host) {
		if ip, ok := parseLooseIPv4(host); ok {
			return netip.Addr{}, fmt.Errorf("host %q is an IPv4 address in a non-standard notation: write it in dotted-decimal form, %s", host, ip)
		}
		return netip.Addr{}, fmt.Errorf("host %q is neither a host name nor a dotted-decimal IPv4 address", host)
	}
	if name := strings.TrimSuffix(host, "."); name == "" || slices.Contains(strings.Split(name, "."), "") {
		return netip.Addr{}, fmt.Errorf("host %q is not a valid host name: it has an empty label", host)
	}
	return netip.Addr{}, nil
}

// endsInNumber reports whether the last label of host, ignoring one
// trailing dot, is numeric: all decimal digits, or 0x or 0X followed by
// hex digits. Such a host is an IPv4 address (or invalid) under the WHATWG
// URL Standard's "ends in a number" rule.
func endsInNumber(host string) bool {
	host = strings.TrimSuffix(host, ".")
	last := host[strings.LastIndexByte(host, '.')+1:]
	if last == "" {
		return false
	}
	if allDigits(last, 10) {
		return true
	}
	return len(last) >= 2 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X') && allDigits(last[2:], 16)
}

// parseLooseIPv4 parses host as the WHATWG URL Standard's IPv4 parser (and,
// but for the trailing dot, inet_aton(3)) does: one to four dot-separated
// numbers, each decimal, 0x-prefixed hexadecimal or 0-prefixed octal, the
// last filling the remaining bytes, with at most one trailing dot.
func parseLooseIPv4(host string) (netip.Addr, bool) {
	parts := strings.Split(host, ".")
	if len(parts) > 1 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var v uint64
	for i, p := range parts {
		n, ok := parseIPv4Number(p)
		if !ok {
			return netip.Addr{}, false
		}
		if i < len(parts)-1 {
			if n > 0xff {
				return netip.Addr{}, false
			}
			v |= n << (8 * (3 - i))
			continue
		}
		if n >= 1<<(8*(5-len(parts))) {
			return netip.Addr{}, false
		}
		v |= n
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

// parseIPv4Number parses one part of a loosely written IPv4 address: 0x or
// 0X then hexadecimal digits (none meaning 0), 0 then octal digits, or
// decimal digits. Values beyond 32 bits are reported as math.MaxUint64.
func parseIPv4Number(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	base := uint64(10)
	switch {
	case len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'):
		s, base = s[2:], 16
	case len(s) >= 2 && s[0] == '0':
		s, base = s[1:], 8
	}
	if !allDigits(s, base) {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		n = n*base + uint64(digitValue(s[i]))
		if n > math.MaxUint32 {
			return math.MaxUint64, true
		}
	}
	return n, true
}

// allDigits reports whether every byte of s is a digit in base (8, 10 or
// 16). It is true for the empty string.
func allDigits(s string, base uint64) bool {
	for i := 0; i < len(s); i++ {
		if d := digitValue(s[i]); d < 0 || uint64(d) >= base {
			return false
		}
	}
	return true
}

func digitValue(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// localSuffixes are the domains whose names resolve only locally; see
// CheckURL.
var localSuffixes = []string{
	"localhost",   // RFC 6761 §6.3
	"local",       // RFC 6762
	"home.arpa",   // RFC 8375
	"internal",    // ICANN Board resolution of 29 July 2024
	"localdomain", // convention (hosts files); never delegated
}

// localName reports whether the host name is local by definition and is
// never resolved to a public Internet host: localhost, a name under
// .localhost, .local, .home.arpa, .internal or .localdomain, or a
// single-label name. Case and one trailing dot are ignored. See CheckURL.
func localName(host string) bool {
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if !strings.Contains(name, ".") {
		return true
	}
	for _, s := range localSuffixes {
		if name == s || strings.HasSuffix(name, "."+s) {
			return true
		}
	}
	return false
}
