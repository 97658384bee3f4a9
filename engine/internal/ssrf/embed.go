package ssrf

import (
	"fmt"
	"net/netip"
)

// embedding describes an IPv4 address carried inside an IPv6 address.
type embedding struct {
	form   string     // "IPv4-mapped", "6to4", "Teredo", ...
	v4     netip.Addr // the destination IPv4 address
	server netip.Addr // for Teredo, the server; else the zero Addr
}

var (
	prefixCompat     = netip.MustParsePrefix("::/96")
	prefixTranslated = netip.MustParsePrefix("::ffff:0:0:0/96")
	prefixNAT64      = netip.MustParsePrefix("64:ff9b::/96")
	prefixNAT64Local = netip.MustParsePrefix("64:ff9b:1::/48")
	prefix6to4       = netip.MustParsePrefix("2002::/16")
	prefixTeredo     = netip.MustParsePrefix("2001::/32")
)

// EmbeddedIPv4 returns the IPv4 address that the IPv6 address ip carries,
// and whether it carries one:
//
//   - IPv4-mapped ::ffff:a.b.c.d (RFC 4291 §2.5.5.2): the last 32 bits.
//   - IPv4-compatible ::a.b.c.d (RFC 4291 §2.5.5.1, deprecated): the last 32
//     bits, except for :: and ::1.
//   - IPv4-translated ::ffff:0:a.b.c.d (RFC 2765 §2.1): the last 32 bits.
//   - NAT64 well-known prefix 64:ff9b::/96 (RFC 6052): the last 32 bits.
//   - NAT64 local-use prefix 64:ff9b:1::/48 (RFC 8215): the operator may
//     use any RFC 6052 prefix length of 48, 56, 64 or 96 bits inside it,
//     and the length is not visible in the address. EmbeddedIPv4 takes the
//     shortest length whose RFC 6052 layout fits (the "u" octet, bits 64 to
//     71, and the suffix after the IPv4 address are zero) and yields an
//     IPv4 address outside 0.0.0.0/8, else 96. With the operator's bits
//     zero this is exact for every destination outside 0.0.0.0/8.
//   - 6to4 2002:V4ADDR::/48 (RFC 3056): bits 16 to 47.
//   - Teredo 2001:0::/32 (RFC 4380 §4): the client's IPv4 address, the last
//     32 bits with every bit inverted. (Bits 32 to 63 are the Teredo
//     server's address; the client is the host that traffic reaches.)
//
// An IPv4 address carries no embedded address. The result is meant for
// messages: all of these ranges except IPv4-mapped are blocked outright by
// [Blocked], whatever they carry.
func EmbeddedIPv4(ip netip.Addr) (netip.Addr, bool) {
	e, ok := embeddingOf(ip)
	return e.v4, ok
}

func embeddingOf(ip netip.Addr) (embedding, bool) {
	if !ip.Is6() {
		return embedding{}, false
	}
	ip = ip.WithZone("")
	b := ip.As16()
	v4at := func(i int) netip.Addr { return netip.AddrFrom4([4]byte(b[i : i+4])) }
	switch {
	case ip.Is4In6():
		return embedding{form: "IPv4-mapped", v4: v4at(12)}, true
	case prefixCompat.Contains(ip):
		if ip == netip.IPv6Unspecified() || ip == netip.IPv6Loopback() {
			return embedding{}, false
		}
		return embedding{form: "IPv4-compatible", v4: v4at(12)}, true
	case prefixTranslated.Contains(ip):
		return embedding{form: "IPv4-translated", v4: v4at(12)}, true
	case prefixNAT64.Contains(ip):
		return embedding{form: "NAT64", v4: v4at(12)}, true
	case prefixNAT64Local.Contains(ip):
		return embedding{form: "NAT64", v4: nat64LocalUse(b)}, true
	case prefix6to4.Contains(ip):
		return embedding{form: "6to4", v4: v4at(2)}, true
	case prefixTeredo.Contains(ip):
		client := [4]byte(b[12:16])
		for i := range client {
			client[i] ^= 0xff
		}
		return embedding{form: "Teredo", v4: netip.AddrFrom4(client), server: v4at(4)}, true
	}
	return embedding{}, false
}

// nat64LocalUse decodes an address of 64:ff9b:1::/48; see EmbeddedIPv4.
func nat64LocalUse(b [16]byte) netip.Addr {
	if b[8] == 0 { // the u octet must be zero for every length but 96
		for _, bits := range []int{48, 56, 64} {
			if v4, ok := rfc6052Extract(b, bits); ok && v4.As4()[0] != 0 {
				return v4
			}
		}
	}
	v4, _ := rfc6052Extract(b, 96)
	return v4
}

// rfc6052Extract returns the IPv4 address embedded in b under the RFC 6052
// §2.2 layout for a prefix of the given length (32, 40, 48, 56, 64 or 96
// bits): the address follows the prefix, skipping bits 64 to 71 (the u
// octet). It reports false if the u octet or the suffix after the address
// is not zero, as RFC 6052 requires.
func rfc6052Extract(b [16]byte, prefixBits int) (netip.Addr, bool) {
	if prefixBits == 96 {
		return netip.AddrFrom4([4]byte(b[12:16])), true
	}
	if b[8] != 0 {
		return netip.Addr{}, false
	}
	var v4 [4]byte
	i := prefixBits / 8
	for n := range v4 {
		if i == 8 {
			i++
		}
		v4[n] = b[i]
		i++
	}
	for ; i < 16; i++ {
		if b[i] != 0 {
			return netip.Addr{}, false
		}
	}
	return netip.AddrFrom4(v4), true
}

// describeEmbedding returns " (6to4 address embedding IPv4 10.0.0.1)" and
// the like for ip, or "".
func describeEmbedding(ip netip.Addr) string {
	e, ok := embeddingOf(ip)
	switch {
	case !ok:
		return ""
	case e.server.IsValid():
		return fmt.Sprintf(" (%s address embedding client IPv4 %s and server IPv4 %s)", e.form, e.v4, e.server)
	default:
		return fmt.Sprintf(" (%s address embedding IPv4 %s)", e.form, e.v4)
	}
}
