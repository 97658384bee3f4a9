package ssrf

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

// TestBlockedRegistryBlocks checks the first, a middle and the last address
// of every blocked block of the special-purpose registries and of the other
// non-public blocks.
func TestBlockedRegistryBlocks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		block string
		addrs []string
	}{
		// IPv4 Special-Purpose Address Registry.
		{"0.0.0.0/8", []string{"0.0.0.0", "0.128.0.0", "0.255.255.255"}},
		{"0.0.0.0/32", []string{"0.0.0.0"}},
		{"10.0.0.0/8", []string{"10.0.0.0", "10.128.0.0", "10.255.255.255", "10.0.0.1"}},
		{"100.64.0.0/10", []string{"100.64.0.0", "100.96.0.0", "100.127.255.255"}},
		{"127.0.0.0/8", []string{"127.0.0.0", "127.0.0.1", "127.128.0.0", "127.255.255.255"}},
		{"169.254.0.0/16", []string{"169.254.0.0", "169.254.128.0", "169.254.169.254", "169.254.255.255"}},
		{"172.16.0.0/12", []string{"172.16.0.0", "172.24.0.0", "172.31.255.255"}},
		{"192.0.0.0/24", []string{"192.0.0.0", "192.0.0.128", "192.0.0.255", "192.0.0.11", "192.0.0.169", "192.0.0.172"}},
		{"192.0.0.0/29", []string{"192.0.0.0", "192.0.0.4", "192.0.0.7"}},
		{"192.0.0.8/32", []string{"192.0.0.8"}},
		{"192.0.0.9/32 (PCP anycast, Herald blocks)", []string{"192.0.0.9"}},
		{"192.0.0.10/32 (TURN anycast, Herald blocks)", []string{"192.0.0.10"}},
		{"192.0.0.170/32", []string{"192.0.0.170"}},
		{"192.0.0.171/32", []string{"192.0.0.171"}},
		{"192.0.2.0/24", []string{"192.0.2.0", "192.0.2.128", "192.0.2.255"}},
		{"192.88.99.0/24", []string{"192.88.99.0", "192.88.99.1", "192.88.99.128", "192.88.99.255"}},
		{"192.88.99.2/32", []string{"192.88.99.2"}},
		{"192.168.0.0/16", []string{"192.168.0.0", "192.168.128.0", "192.168.255.255", "192.168.1.1"}},
		{"198.18.0.0/15", []string{"198.18.0.0", "198.19.0.0", "198.19.255.255"}},
		{"198.51.100.0/24", []string{"198.51.100.0", "198.51.100.128", "198.51.100.255"}},
		{"203.0.113.0/24", []string{"203.0.113.0", "203.0.113.128", "203.0.113.255"}},
		{"240.0.0.0/4", []string{"240.0.0.0", "248.0.0.0", "255.255.255.254"}},
		{"255.255.255.255/32", []string{"255.255.255.255"}},
		{"224.0.0.0/4 multicast", []string{"224.0.0.0", "224.0.0.1", "232.0.0.0", "239.255.255.250", "239.255.255.255"}},

		// IPv6 Special-Purpose Address Registry.
		{"::/128", []string{"::", "0:0:0:0:0:0:0:0"}},
		{"::1/128", []string{"::1", "0:0:0:0:0:0:0:1"}},
		{"::ffff:0:0/96 of a blocked IPv4", []string{"::ffff:0.0.0.0", "::ffff:127.0.0.1", "::ffff:10.1.2.3", "::ffff:169.254.169.254", "::ffff:255.255.255.255", "::ffff:7f00:1"}},
		{"64:ff9b::/96", []string{"64:ff9b::", "64:ff9b::8000:0", "64:ff9b::ffff:ffff", "64:ff9b::808:808"}},
		{"64:ff9b:1::/48", []string{"64:ff9b:1::", "64:ff9b:1:8000::", "64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "64:ff9b:1::808:808"}},
		{"100::/64", []string{"100::", "100::8000:0:0:0", "100::ffff:ffff:ffff:ffff"}},
		{"100:0:0:1::/64", []string{"100:0:0:1::", "100:0:0:1:8000::", "100:0:0:1:ffff:ffff:ffff:ffff"}},
		{"2001::/23", []string{"2001:100::", "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:1::", "2001:1::4", "2001:4::", "2001:40::", "2001:4:111:ffff:ffff:ffff:ffff:ffff", "2001:4:113::"}},
		{"2001::/32 Teredo", []string{"2001::", "2001:0:8000::", "2001:0:ffff:ffff:ffff:ffff:ffff:ffff"}},
		{"2001:1::1/128 (PCP anycast, Herald blocks)", []string{"2001:1::1"}},
		{"2001:1::2/128 (TURN anycast, Herald blocks)", []string{"2001:1::2"}},
		{"2001:1::3/128 (DNS-SD SRP anycast, Herald blocks)", []string{"2001:1::3"}},
		{"2001:2::/48", []string{"2001:2::", "2001:2:0:8000::", "2001:2:0:ffff:ffff:ffff:ffff:ffff", "2001:2:ffff:ffff:ffff:ffff:ffff:ffff"}},
		{"2001:10::/28", []string{"2001:10::", "2001:18::", "2001:1f:ffff:ffff:ffff:ffff:ffff:ffff"}},
		{"2001:db8::/32", []string{"2001:db8::", "2001:db8:8000::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"}},
		{"2002::/16", []string{"2002::", "2002:8000::", "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2002:808:808::1"}},
		{"3fff::/20", []string{"3fff::", "3fff:800::", "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff"}},
		{"5f00::/16", []string{"5f00::", "5f00:8000::", "5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}},
		{"fc00::/7", []string{"fc00::", "fd00::", "fd12:3456::1", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}},
		{"fe80::/10", []string{"fe80::", "fe80::1", "fea0::", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}},

		// Other non-public IPv6.
		{"::/96 IPv4-compatible", []string{"::2", "::8.8.8.8", "::127.0.0.1", "::ffff:ffff"}},
		{"::ffff:0:0:0/96 IPv4-translated", []string{"::ffff:0:0:0", "::ffff:0:808:808", "::ffff:0:ffff:ffff"}},
		{"fec0::/10 site-local", []string{"fec0::", "fee0::", "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}},
		{"ff00::/8 multicast", []string{"ff00::", "ff02::1", "ff05::2", "ff0e::1", "ff80::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}},
		{"outside 2000::/3", []string{"1::", "200::1", "400::1", "1000::1", "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "4000::", "6000::1", "8000::1", "e000::1", "64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff", "5eff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "5f01::"}},
	} {
		for _, s := range tc.addrs {
			if !Blocked(netip.MustParseAddr(s)) {
				t.Errorf("Blocked(%s) = false, want true (%s)", s, tc.block)
			}
		}
	}
}

// TestBlockedPublic checks addresses just outside the blocked blocks, and
// well-known public ones.
func TestBlockedPublic(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"1.1.1.1", "8.8.8.8", "9.9.9.9", "93.184.215.14", "1.0.0.0",
		"9.255.255.255", "11.0.0.0",
		"100.63.255.255", "100.128.0.0",
		"126.255.255.255", "128.0.0.0",
		"169.253.255.255", "169.255.0.0",
		"172.15.255.255", "172.32.0.0",
		"191.255.255.255", "192.0.1.0", "192.0.1.255", "192.0.3.0",
		"192.88.98.255", "192.88.100.0",
		"192.167.255.255", "192.169.0.0",
		"198.17.255.255", "198.20.0.0",
		"198.51.99.255", "198.51.101.0",
		"203.0.112.255", "203.0.114.0",
		"223.255.255.255",
		"::ffff:8.8.8.8", "::ffff:1.1.1.1", "::ffff:100.128.0.0",
		"2606:4700:4700::1111", "2001:4860:4860::8888", "2a00:1450:4001:81c::200e",
		"2000::1", "2001:200::", "2001:200::1",
		"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db9::",
		"2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2003::", "2003::1",
		"3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "3fff:1000::",
		"3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		"2620:4f:7fff:ffff:ffff:ffff:ffff:ffff", "2620:4f:8001::",
		"2606:4700:4700::1111%eth0", // a zone is ignored
	} {
		if Blocked(netip.MustParseAddr(s)) {
			t.Errorf("Blocked(%s) = true, want false", s)
		}
	}
}

// TestBlockedGloballyReachable checks the registry blocks marked Globally
// Reachable, which Herald follows (except the anycast addresses of PCP,
// TURN and DNS-SD SRP, checked in TestBlockedRegistryBlocks).
func TestBlockedGloballyReachable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		block string
		addrs []string
	}{
		{"192.31.196.0/24 AS112-v4", []string{"192.31.196.0", "192.31.196.1", "192.31.196.128", "192.31.196.255"}},
		{"192.52.193.0/24 AMT", []string{"192.52.193.0", "192.52.193.128", "192.52.193.255"}},
		{"192.175.48.0/24 AS112", []string{"192.175.48.0", "192.175.48.128", "192.175.48.255"}},
		{"2001:3::/32 AMT", []string{"2001:3::", "2001:3:8000::", "2001:3:ffff:ffff:ffff:ffff:ffff:ffff"}},
		{"2001:4:112::/48 AS112-v6", []string{"2001:4:112::", "2001:4:112:8000::", "2001:4:112:ffff:ffff:ffff:ffff:ffff"}},
		{"2001:20::/28 ORCHIDv2", []string{"2001:20::", "2001:28::", "2001:2f:ffff:ffff:ffff:ffff:ffff:ffff"}},
		{"2001:30::/28 DRIP", []string{"2001:30::", "2001:38::", "2001:3f:ffff:ffff:ffff:ffff:ffff:ffff"}},
		{"2620:4f:8000::/48 AS112", []string{"2620:4f:8000::", "2620:4f:8000:8000::", "2620:4f:8000:ffff:ffff:ffff:ffff:ffff"}},
	} {
		for _, s := range tc.addrs {
			if Blocked(netip.MustParseAddr(s)) {
				t.Errorf("Blocked(%s) = true, want false (%s, Globally Reachable)", s, tc.block)
			}
		}
	}
}

func TestBlockedZonesAndZeroAddr(t *testing.T) {
	t.Parallel()
	if !Blocked(netip.Addr{}) {
		t.Error("Blocked(zero Addr) = false")
	}
	for _, s := range []string{"fe80::1%eth0", "fe80::1%1", "::1%lo", "fd00::1%eth0", "ff02::1%eth0", "::ffff:127.0.0.1%eth0"} {
		if !Blocked(netip.MustParseAddr(s)) {
			t.Errorf("Blocked(%s) = false", s)
		}
	}
}

// TestSpecialTables checks the tables themselves: canonical prefixes of the
// right family, a name and a reference on every row, no duplicates, and
// the few rows that are not blocked are exactly the ones documented.
func TestSpecialTables(t *testing.T) {
	t.Parallel()
	public := map[string]bool{}
	for _, tc := range []struct {
		table []special
		v4    bool
	}{{specialV4, true}, {specialV6, false}} {
		seen := map[netip.Prefix]bool{}
		for _, r := range tc.table {
			if r.prefix != r.prefix.Masked() || r.prefix.Addr().Is4() != tc.v4 {
				t.Errorf("row %s: not a canonical prefix of the table's family", r.prefix)
			}
			if r.name == "" || r.ref == "" {
				t.Errorf("row %s: no name or reference", r.prefix)
			}
			if seen[r.prefix] {
				t.Errorf("row %s: duplicate", r.prefix)
			}
			seen[r.prefix] = true
			if !r.blocked {
				public[r.prefix.String()] = true
			}
		}
	}
	want := []string{"192.31.196.0/24", "192.52.193.0/24", "192.175.48.0/24", "2001:3::/32", "2001:4:112::/48", "2001:20::/28", "2001:30::/28", "2620:4f:8000::/48"}
	if len(public) != len(want) {
		t.Errorf("rows not blocked: %v, want %v", public, want)
	}
	for _, p := range want {
		if !public[p] {
			t.Errorf("row %s is blocked, want it globally reachable", p)
		}
	}
	// Every IPv6 address outside the global unicast space falls in a
	// blocked row.
	for _, s := range []string{"::", "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "4000::", "7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "8000::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"} {
		if r, ok := lookup(specialV6, netip.MustParseAddr(s)); !ok || !r.blocked {
			t.Errorf("lookup(%s) = %+v, %v; want a blocked row", s, r, ok)
		}
	}
}

// embed4 builds an IPv6 address from prefix bytes, with v4 at byte offset at.
func embed4(prefix []byte, at int, v4 netip.Addr) netip.Addr {
	var b [16]byte
	copy(b[:], prefix)
	a := v4.As4()
	copy(b[at:], a[:])
	return netip.AddrFrom16(b)
}

// teredo builds a Teredo address for a server and a client.
func teredo(server, client netip.Addr) netip.Addr {
	b := [16]byte{0x20, 0x01, 0, 0}
	s, c := server.As4(), client.As4()
	copy(b[4:8], s[:])
	b[8], b[10], b[11] = 0x80, 0x63, 0xbf // flags, obfuscated port
	for i := range c {
		b[12+i] = ^c[i]
	}
	return netip.AddrFrom16(b)
}

// rfc6052 embeds v4 after a Pref64 of the given length (RFC 6052 §2.2).
func rfc6052(prefix netip.Prefix, bits int, v4 netip.Addr) netip.Addr {
	b := prefix.Addr().As16()
	a := v4.As4()
	i := bits / 8
	for _, x := range a {
		if i == 8 {
			i++ // the u octet
		}
		b[i] = x
		i++
	}
	return netip.AddrFrom16(b)
}

// TestEmbeddedPrivateIPv4 checks every embedding of private IPv4 addresses
// (and of a public one) in every form: each is Blocked, and EmbeddedIPv4
// finds the IPv4 address.
func TestEmbeddedPrivateIPv4(t *testing.T) {
	t.Parallel()
	publicServer := netip.MustParseAddr("65.54.227.120")
	public := netip.MustParseAddr("8.8.8.8")
	for _, s := range []string{"127.0.0.1", "10.0.0.1", "169.254.169.254", "192.168.1.1", "8.8.8.8"} {
		v4 := netip.MustParseAddr(s)
		forms := []struct {
			form   string
			ip     netip.Addr
			want   netip.Addr // the embedded address EmbeddedIPv4 returns
			server netip.Addr
		}{
			{"6to4", embed4([]byte{0x20, 0x02}, 2, v4), v4, netip.Addr{}},
			{"6to4 with subnet and host", netip.AddrFrom16([16]byte(append(embed4([]byte{0x20, 0x02}, 2, v4).AsSlice()[:6], 0, 1, 2, 3, 4, 5, 6, 7, 8, 9))), v4, netip.Addr{}},
			{"Teredo client", teredo(publicServer, v4), v4, publicServer},
			{"Teredo server", teredo(v4, public), public, v4},
			{"NAT64 64:ff9b::/96", embed4(netip.MustParseAddr("64:ff9b::").AsSlice(), 12, v4), v4, netip.Addr{}},
			{"IPv4-mapped", netip.AddrFrom16(v4.As16()), v4, netip.Addr{}},
			{"IPv4-compatible", embed4(nil, 12, v4), v4, netip.Addr{}},
			{"IPv4-translated", embed4([]byte{8: 0xff, 9: 0xff}, 12, v4), v4, netip.Addr{}},
		}
		local := netip.MustParsePrefix("64:ff9b:1::/48")
		for _, bits := range []int{48, 56, 64, 96} {
			forms = append(forms, struct {
				form   string
				ip     netip.Addr
				want   netip.Addr
				server netip.Addr
			}{"NAT64 64:ff9b:1::/" + strconv.Itoa(bits), rfc6052(local, bits, v4), v4, netip.Addr{}})
		}
		for _, f := range forms {
			wantBlocked := f.form != "IPv4-mapped" || s != "8.8.8.8"
			if got := Blocked(f.ip); got != wantBlocked {
				t.Errorf("%s of %s: Blocked(%s) = %v, want %v", f.form, s, f.ip, got, wantBlocked)
			}
			e, ok := embeddingOf(f.ip)
			if got, gotOK := EmbeddedIPv4(f.ip); !ok || !gotOK || got != f.want || e.v4 != f.want || e.server != f.server || !strings.HasPrefix(f.form, e.form) {
				t.Errorf("%s of %s: EmbeddedIPv4(%s) = %s, %v; embedding %+v; want %s, server %s", f.form, s, f.ip, got, gotOK, e, f.want, f.server)
			}
		}
	}
}

// TestEmbeddedIPv4Literals checks written-out addresses, independently of
// the builders above.
func TestEmbeddedIPv4Literals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ip, v4, server string // v4 "" for no embedding
	}{
		{"2002:7f00:1::", "127.0.0.1", ""},
		{"2002:a00:1::1", "10.0.0.1", ""},
		{"2002:a9fe:a9fe:1:2:3:4:5", "169.254.169.254", ""},
		{"2002:c0a8:101::", "192.168.1.1", ""},
		// RFC 4380 §4's example: server 65.54.227.120, client 192.0.2.45.
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.45", "65.54.227.120"},
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.1", "65.54.227.120"},
		{"2001:0:4136:e378:8000:63bf:f5ff:fffe", "10.0.0.1", "65.54.227.120"},
		{"2001:0:4136:e378:8000:63bf:5601:5601", "169.254.169.254", "65.54.227.120"},
		{"2001:0:4136:e378:8000:63bf:3f57:fefe", "192.168.1.1", "65.54.227.120"},
		{"2001:0:7f00:1:8000:63bf:f7f7:f7f7", "8.8.8.8", "127.0.0.1"},
		{"64:ff9b::7f00:1", "127.0.0.1", ""},
		{"64:ff9b::10.0.0.1", "10.0.0.1", ""},
		{"64:ff9b::a9fe:a9fe", "169.254.169.254", ""},
		{"64:ff9b:1::a00:1", "10.0.0.1", ""},                     // /96
		{"64:ff9b:1:0:a:0:100:0", "10.0.0.1", ""},                // /64
		{"64:ff9b:1:a:0:1::", "10.0.0.1", ""},                    // /56
		{"64:ff9b:1:a00:0:100::", "10.0.0.1", ""},                // /48
		{"64:ff9b:1::a00:0", "10.0.0.0", ""},                     // /96, not /64's 0.0.0.10
		{"64:ff9b:1:abcd:ef:0:a9fe:a9fe", "169.254.169.254", ""}, // /96 with operator bits
		{"::ffff:127.0.0.1", "127.0.0.1", ""},
		{"::ffff:7f00:1", "127.0.0.1", ""},
		{"::127.0.0.1", "127.0.0.1", ""},
		{"::a9fe:a9fe", "169.254.169.254", ""},
		{"::ffff:0:c0a8:101", "192.168.1.1", ""},
		{"::", "", ""},
		{"::1", "", ""},
		{"2606:4700:4700::1111", "", ""},
		{"fe80::1", "", ""},
		{"127.0.0.1", "", ""},
		{"2003::7f00:1", "", ""},
	} {
		ip := netip.MustParseAddr(tc.ip)
		got, ok := EmbeddedIPv4(ip)
		if tc.v4 == "" {
			if ok {
				t.Errorf("EmbeddedIPv4(%s) = %s, true; want none", tc.ip, got)
			}
			continue
		}
		if !ok || got.String() != tc.v4 {
			t.Errorf("EmbeddedIPv4(%s) = %s, %v; want %s", tc.ip, got, ok, tc.v4)
		}
		if e, _ := embeddingOf(ip); tc.server != "" && e.server.String() != tc.server {
			t.Errorf("embeddingOf(%s).server = %s, want %s", tc.ip, e.server, tc.server)
		}
		if !Blocked(ip) {
			t.Errorf("Blocked(%s) = false", tc.ip)
		}
	}
}

func TestBlockedErrorMessages(t *testing.T) {
	t.Parallel()
	const hint = " (see --allow-private-networks)"
	for _, tc := range []struct {
		err  BlockedError
		want string
	}{
		{BlockedError{Host: "hooks.example.com", IP: netip.MustParseAddr("10.0.0.1")}, "hooks.example.com resolves to 10.0.0.1, a non-public address" + hint},
		{BlockedError{IP: netip.MustParseAddr("127.0.0.1")}, "127.0.0.1 is a non-public address" + hint},
		{BlockedError{Host: "::1", IP: netip.MustParseAddr("::1")}, "::1 is a non-public address" + hint},
		{BlockedError{Host: "printer.local"}, "printer.local is a local-only name, a non-public address" + hint},
		{BlockedError{Host: "evil.example", IP: netip.MustParseAddr("2002:a00:1::1")}, "evil.example resolves to 2002:a00:1::1 (6to4 address embedding IPv4 10.0.0.1), a non-public address" + hint},
		{BlockedError{IP: netip.MustParseAddr("64:ff9b::a9fe:a9fe")}, "64:ff9b::a9fe:a9fe (NAT64 address embedding IPv4 169.254.169.254) is a non-public address" + hint},
		{BlockedError{IP: netip.MustParseAddr("::ffff:127.0.0.1")}, "::ffff:127.0.0.1 (IPv4-mapped address embedding IPv4 127.0.0.1) is a non-public address" + hint},
		{BlockedError{IP: netip.MustParseAddr("2001:0:4136:e378:8000:63bf:f5ff:fffe")}, "2001:0:4136:e378:8000:63bf:f5ff:fffe (Teredo address embedding client IPv4 10.0.0.1 and server IPv4 65.54.227.120) is a non-public address" + hint},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q\nwant      %q", got, tc.want)
		}
		if !strings.Contains(tc.err.Error(), "non-public address") {
			t.Errorf("%q does not say non-public address", tc.err.Error())
		}
	}
}
