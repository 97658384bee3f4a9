// Package ssrf guards Herald's outgoing requests against server-side request
// forgery.
//
// Herald POSTs to URLs that its API clients register. Without a guard, a
// client could register http://127.0.0.1:8500/, http://10.0.0.7/admin or
// http://169.254.169.254/latest/meta-data/ (the cloud metadata service, which
// hands out instance credentials) and have Herald send requests, from inside
// the operator's network, to services that were never meant to be reachable
// from outside. Delivery results (status codes, timings, error text) then
// leak what is there.
//
// The guard runs twice:
//
//   - When a URL is registered, [CheckURL] rejects malformed and ambiguous
//     URLs, literal non-public addresses, names that are local by definition
//     (localhost, .local, ...), and names that currently resolve to a
//     non-public address. This gives the client an immediate, clear error.
//   - When a connection is made, [Control] (a net.Dialer.Control hook) checks
//     the address actually being dialled, after DNS. This is the check that
//     matters: a name's answers can change between registration and delivery
//     (DNS rebinding: a name resolves to a public address when checked and to
//     127.0.0.1 a second later), a name may not resolve at all at
//     registration, and every retry resolves it again. Only the dialled
//     address is authoritative. For the same reason the HTTP transport must
//     not use a proxy: a proxy dials on Herald's behalf, out of Control's
//     sight.
//
// [Blocked] decides which addresses are non-public: everything that is not
// globally reachable unicast according to the IANA IPv4 and IPv6
// Special-Purpose Address Registries, plus multicast, reserved and
// deprecated space, and every IPv6 form that embeds an IPv4 address
// (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo) that could carry
// traffic to a private IPv4 address.
//
// The guard is switched off as a whole by --allow-private-networks (the
// callers' allowPrivate); the engine then installs no Control hook.
//
// What the guard cannot see: a network-specific NAT64 prefix (RFC 6052
// §2.3) chosen by the operator, and public addresses that the operator's
// routing makes internal. Such networks need egress filtering as well.
// Blocking the NAT64 prefixes also means that a Herald node on an
// IPv6-only network behind DNS64 cannot reach IPv4-only receivers without
// --allow-private-networks.
package ssrf

import "net/netip"

// special is one row of the special-purpose address table.
type special struct {
	prefix  netip.Prefix
	blocked bool
	name    string // the registry's name for the block
	ref     string // the RFC (or other source) that defines it
}

func row(cidr string, blocked bool, name, ref string) special {
	return special{prefix: netip.MustParsePrefix(cidr), blocked: blocked, name: name, ref: ref}
}

// specialV4 is the IANA IPv4 Special-Purpose Address Registry
// (https://www.iana.org/assignments/iana-ipv4-special-registry), followed by
// the IPv4 blocks outside it that are not public unicast. Each row says
// whether Herald refuses to connect to it: a row is blocked unless the
// registry marks it Globally Reachable, and see the rows marked "Herald
// blocks" for the exceptions. The most specific row containing an address
// decides.
var specialV4 = []special{
	row("0.0.0.0/8", true, `"This network"`, "RFC 791 §3.2"),
	row("0.0.0.0/32", true, `"This host on this network"`, "RFC 1122 §3.2.1.3"),
	row("10.0.0.0/8", true, "Private-Use", "RFC 1918"),
	row("100.64.0.0/10", true, "Shared Address Space (carrier-grade NAT)", "RFC 6598"),
	row("127.0.0.0/8", true, "Loopback", "RFC 1122 §3.2.1.3"),
	row("169.254.0.0/16", true, "Link Local (includes cloud metadata 169.254.169.254)", "RFC 3927"),
	row("172.16.0.0/12", true, "Private-Use", "RFC 1918"),
	row("192.0.0.0/24", true, "IETF Protocol Assignments", "RFC 6890 §2.1"),
	row("192.0.0.0/29", true, "IPv4 Service Continuity Prefix", "RFC 7335"),
	row("192.0.0.8/32", true, "IPv4 dummy address", "RFC 7600"),
	// Globally Reachable in the registry, but Herald blocks it: the anycast
	// address reaches the nearest PCP server, which is the operator's own
	// NAT gateway, not an Internet host.
	row("192.0.0.9/32", true, "Port Control Protocol Anycast", "RFC 7723"),
	// Globally Reachable in the registry; Herald blocks it for the same
	// reason: it reaches the access network's own TURN server.
	row("192.0.0.10/32", true, "Traversal Using Relays around NAT Anycast", "RFC 8155"),
	row("192.0.0.170/32", true, "NAT64/DNS64 Discovery", "RFC 8880, RFC 7050 §2.2"),
	row("192.0.0.171/32", true, "NAT64/DNS64 Discovery", "RFC 8880, RFC 7050 §2.2"),
	row("192.0.2.0/24", true, "Documentation (TEST-NET-1)", "RFC 5737"),
	row("192.31.196.0/24", false, "AS112-v4", "RFC 7535"),
	row("192.52.193.0/24", false, "AMT", "RFC 7450"),
	row("192.88.99.0/24", true, "Deprecated (6to4 Relay Anycast)", "RFC 7526"),
	row("192.88.99.2/32", true, "6a44-relay anycast address", "RFC 6751"),
	row("192.168.0.0/16", true, "Private-Use", "RFC 1918"),
	row("192.175.48.0/24", false, "Direct Delegation AS112 Service", "RFC 7534"),
	row("198.18.0.0/15", true, "Benchmarking", "RFC 2544"),
	row("198.51.100.0/24", true, "Documentation (TEST-NET-2)", "RFC 5737"),
	row("203.0.113.0/24", true, "Documentation (TEST-NET-3)", "RFC 5737"),
	row("240.0.0.0/4", true, "Reserved", "RFC 1112 §4"),
	row("255.255.255.255/32", true, "Limited Broadcast", "RFC 8190, RFC 919 §7"),

	// Not in the special-purpose registry.
	row("224.0.0.0/4", true, "Multicast", "RFC 5771"),
}

// specialV6 is the IANA IPv6 Special-Purpose Address Registry
// (https://www.iana.org/assignments/iana-ipv6-special-registry), followed by
// the IPv6 blocks outside it that are not public unicast, on the same terms
// as specialV4.
var specialV6 = []special{
	row("::/128", true, "Unspecified Address", "RFC 4291"),
	row("::1/128", true, "Loopback Address", "RFC 4291"),
	// Blocked classifies IPv4-mapped addresses by the IPv4 address they
	// carry (an IPv6 socket sends them as plain IPv4), so this row decides
	// nothing; it is listed for completeness.
	row("::ffff:0:0/96", true, "IPv4-mapped Address", "RFC 4291"),
	// Globally Reachable in the registry, but Herald blocks it: a NAT64
	// translator forwards to whatever IPv4 address is embedded, private
	// ones included.
	row("64:ff9b::/96", true, "IPv4-IPv6 Translation (NAT64 well-known prefix)", "RFC 6052"),
	row("64:ff9b:1::/48", true, "IPv4-IPv6 Translation (NAT64 local-use prefix)", "RFC 8215"),
	row("100::/64", true, "Discard-Only Address Block", "RFC 6666"),
	row("100:0:0:1::/64", true, "Dummy IPv6 Prefix", "RFC 9780"),
	row("2001::/23", true, "IETF Protocol Assignments", "RFC 2928"),
	row("2001::/32", true, "TEREDO", "RFC 4380, RFC 8190"),
	// Globally Reachable in the registry, but Herald blocks these three
	// anycast addresses, as it does 192.0.0.9 and 192.0.0.10: each reaches
	// the nearest server of the local or access network (the NAT gateway's
	// PCP server, the access network's TURN server, the local network's
	// DNS-SD registration server), not an Internet host.
	row("2001:1::1/128", true, "Port Control Protocol Anycast", "RFC 7723"),
	row("2001:1::2/128", true, "TURN Anycast", "RFC 8155"),
	row("2001:1::3/128", true, "DNS-SD Service Registration Protocol Anycast", "RFC 9665"),
	row("2001:2::/48", true, "Benchmarking", "RFC 5180, RFC Errata 1752"),
	row("2001:3::/32", false, "AMT", "RFC 7450"),
	row("2001:4:112::/48", false, "AS112-v6", "RFC 7535"),
	row("2001:10::/28", true, "Deprecated (previously ORCHID)", "RFC 4843"),
	row("2001:20::/28", false, "ORCHIDv2", "RFC 7343"),
	row("2001:30::/28", false, "Drone Remote ID Protocol Entity Tags (DETs) Prefix", "RFC 9374"),
	row("2001:db8::/32", true, "Documentation", "RFC 3849"),
	row("2002::/16", true, "6to4", "RFC 3056"),
	row("2620:4f:8000::/48", false, "Direct Delegation AS112 Service", "RFC 7534"),
	row("3fff::/20", true, "Documentation", "RFC 9637"),
	row("5f00::/16", true, "Segment Routing (SRv6) SIDs", "RFC 9602"),
	row("fc00::/7", true, "Unique-Local", "RFC 4193, RFC 8190"),
	row("fe80::/10", true, "Link-Local Unicast", "RFC 4291"),

	// Not in the special-purpose registry.
	row("::/96", true, "IPv4-compatible Address (deprecated)", "RFC 4291 §2.5.5.1"),
	row("::ffff:0:0:0/96", true, "IPv4-translated Address (SIIT)", "RFC 2765 §2.1"),
	row("fec0::/10", true, "Site-Local Unicast (deprecated)", "RFC 3879"),
	row("ff00::/8", true, "Multicast", "RFC 4291 §2.7"),
	// Only 2000::/3 is allocated for global unicast; the rest of the IPv6
	// address space is reserved by the IETF. These three blocks are its
	// complement; everything above is more specific and decides first.
	row("::/3", true, "Reserved by IETF (not global unicast)", "RFC 4291 §2.4, IANA IPv6 Address Space"),
	row("4000::/2", true, "Reserved by IETF (not global unicast)", "RFC 4291 §2.4, IANA IPv6 Address Space"),
	row("8000::/1", true, "Reserved by IETF (not global unicast)", "RFC 4291 §2.4, IANA IPv6 Address Space"),
}

// lookup returns the most specific row of table that contains ip.
func lookup(table []special, ip netip.Addr) (special, bool) {
	best := -1
	for i, r := range table {
		if r.prefix.Contains(ip) && (best < 0 || r.prefix.Bits() > table[best].prefix.Bits()) {
			best = i
		}
	}
	if best < 0 {
		return special{}, false
	}
	return table[best], true
}

// Blocked reports whether ip is not a globally reachable public unicast
// address, and so must not be a destination: loopback, private, shared,
// link-local, multicast, broadcast, reserved, documentation, benchmarking,
// and every other block of the IANA special-purpose registries that is not
// Globally Reachable; NAT64, 6to4, Teredo and IPv4-compatible addresses,
// which embed IPv4 addresses that may be private; any IPv6 address outside
// 2000::/3; and the invalid zero Addr.
//
// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is classified as the IPv4
// address it carries. An IPv6 zone is ignored.
//
// A few registry blocks are Globally Reachable and not blocked: the AS112
// blocks (192.31.196.0/24, 192.175.48.0/24, 2001:4:112::/48,
// 2620:4f:8000::/48), AMT (192.52.193.0/24, 2001:3::/32), ORCHIDv2
// (2001:20::/28) and DRIP (2001:30::/28). The Globally Reachable anycast
// addresses of PCP (192.0.0.9, 2001:1::1), TURN (192.0.0.10, 2001:1::2) and
// DNS-SD SRP (2001:1::3) are blocked all the same, as they reach servers of
// the local or access network.
func Blocked(ip netip.Addr) bool {
	if !ip.IsValid() {
		return true
	}
	ip = ip.WithZone("").Unmap()
	table := specialV6
	if ip.Is4() {
		table = specialV4
	}
	r, ok := lookup(table, ip)
	return ok && r.blocked
}
