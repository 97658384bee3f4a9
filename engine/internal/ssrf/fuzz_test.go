package ssrf

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"net/netip"
	"net/url"
	"sync"
	"testing"
	"time"
)

// fuzzPool holds the fake resolver's answers, public and not.
var fuzzPool = []netip.Addr{
	netip.MustParseAddr("93.184.215.14"),
	netip.MustParseAddr("2606:4700:4700::1111"),
	netip.MustParseAddr("::ffff:8.8.8.8"),
	netip.MustParseAddr("192.175.48.1"),
	netip.MustParseAddr("127.0.0.1"),
	netip.MustParseAddr("10.0.0.1"),
	netip.MustParseAddr("169.254.169.254"),
	netip.MustParseAddr("fd00::1"),
	netip.MustParseAddr("64:ff9b::a00:1"),
	netip.MustParseAddr("2002:a00:1::1"),
	netip.MustParseAddr("::ffff:192.168.1.1"),
	netip.MustParseAddr("2001:1::1"),
}

// fuzzAnswers answers a lookup of host deterministically from its hash:
// sometimes a failure, else zero to three addresses from fuzzPool.
func fuzzAnswers(host string) ([]netip.Addr, error) {
	h := fnv.New64a()
	h.Write([]byte(host))
	x := h.Sum64()
	if x%7 == 0 {
		return nil, errNoSuchHost
	}
	x /= 7
	addrs := make([]netip.Addr, x%4)
	x /= 4
	for i := range addrs {
		addrs[i] = fuzzPool[x%uint64(len(fuzzPool))]
		x /= uint64(len(fuzzPool))
	}
	return addrs, nil
}

// FuzzCheckURL checks, with a fake resolver, that checkURL does not panic;
// that an accepted URL has no non-public literal address, no numeric host
// other than a dotted-decimal address, no local name and no non-public
// answer; that a refusal as non-public names a non-public address or a
// local name; and that allowing private networks only ever accepts more.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://example.com/hook", "http://93.184.215.14:8080/x?y=z", "https://[2606:4700:4700::1111]/",
		"http://127.0.0.1/", "http://2130706433/", "http://0x7f000001/", "http://0177.0.0.1/", "http://127.1/",
		"http://10.1.1/", "http://0x7f.1/", "http://127.0.0.1./", "http://[::ffff:127.0.0.1]/",
		"http://[fe80::1%25eth0]/", "http://[64:ff9b::a9fe:a9fe]/", "http://[2002:7f00:1::]/",
		"http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/", "http://localhost:8080/", "http://api.localhost/",
		"http://printer.local./", "http://intranet/", "http://metadata.google.internal/computeMetadata/v1/",
		"https://user:pass@example.com/", "ftp://example.com/", "http:///x", "http://１２７.０.０.１/",
		"http://b%C3%BCcher.example/", "http://a..b/", "http://1.2.3.4.5/", "http://256.1.1.1/",
		"http://0x/", "http://08.1/", "HTTPS://EXAMPLE.COM./", "http://[::]/", "http://[::1%25lo]:80/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var mu sync.Mutex
		var answered []netip.Addr
		dns := resolverFunc(func(_ context.Context, _, host string) ([]netip.Addr, error) {
			addrs, err := fuzzAnswers(host)
			mu.Lock()
			answered = append(answered, addrs...)
			mu.Unlock()
			return addrs, err
		})
		errGuarded := checker{dns, time.Second}.checkURL(ctxb, raw, false)
		errOpen := checker{noDNS(t), time.Second}.checkURL(ctxb, raw, true)
		if errOpen != nil && errGuarded == nil {
			t.Fatalf("%q: accepted when guarded, refused with private networks allowed: %v", raw, errOpen)
		}
		var be *BlockedError
		if errors.As(errGuarded, &be) {
			if errOpen != nil {
				t.Fatalf("%q: refused as non-public (%v), and also with private networks allowed: %v", raw, errGuarded, errOpen)
			}
			if be.IP.IsValid() && !Blocked(be.IP) || !be.IP.IsValid() && !localName(be.Host) {
				t.Fatalf("%q: %v refuses a public destination", raw, errGuarded)
			}
		}
		if errGuarded != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("%q: accepted, but url.Parse: %v", raw, err)
		}
		host := u.Hostname()
		if ip, err := netip.ParseAddr(host); err == nil && (Blocked(ip) || ip.Zone() != "") {
			t.Fatalf("%q: accepted with literal address %s", raw, ip)
		}
		if ip, ok := parseLooseIPv4(host); ok && ip.String() != host {
			t.Fatalf("%q: accepted host %q, which is IPv4 %s in another notation", raw, host, ip)
		}
		if endsInNumber(host) {
			if _, err := netip.ParseAddr(host); err != nil {
				t.Fatalf("%q: accepted numeric host %q", raw, host)
			}
		}
		for i := 0; i < len(host); i++ {
			if host[i] >= 0x80 {
				t.Fatalf("%q: accepted non-ASCII host %q", raw, host)
			}
		}
		if _, err := netip.ParseAddr(host); err != nil && localName(host) {
			t.Fatalf("%q: accepted local name %q", raw, host)
		}
		for _, a := range answered {
			if Blocked(a) {
				t.Fatalf("%q: accepted though %s resolves to %s", raw, host, a)
			}
		}
	})
}

// FuzzEmbeddedIPv4 builds addresses of every embedding form around
// arbitrary IPv4 addresses and other bits, and checks that each is blocked
// (IPv4-mapped ones exactly when the IPv4 address is) and that
// EmbeddedIPv4 finds the address; and, for arbitrary addresses, that an
// address embedding a blocked IPv4 address is blocked.
func FuzzEmbeddedIPv4(f *testing.F) {
	f.Add(uint8(0), uint32(0x7f000001), uint64(0), uint64(0))
	f.Add(uint8(3), uint32(0x0a000001), uint64(1), uint64(2))
	f.Add(uint8(5), uint32(0xa9fea9fe), uint64(0xffffffffffffffff), uint64(0))
	f.Add(uint8(7), uint32(0x08080808), uint64(0x0123456789abcdef), uint64(0xfedcba9876543210))
	f.Fuzz(func(t *testing.T, kind uint8, v4bits uint32, x, y uint64) {
		var v4b [4]byte
		binary.BigEndian.PutUint32(v4b[:], v4bits)
		v4 := netip.AddrFrom4(v4b)

		// Arbitrary 128 bits first.
		var raw [16]byte
		binary.BigEndian.PutUint64(raw[:8], x)
		binary.BigEndian.PutUint64(raw[8:], y)
		checkEmbedding(t, netip.AddrFrom16(raw))

		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], x)
		binary.BigEndian.PutUint64(b[8:], y)
		exact := true // whether EmbeddedIPv4 must return v4
		switch kind % 8 {
		case 0: // IPv4-mapped
			b = v4.As16()
		case 1: // IPv4-compatible
			b = [16]byte{}
			copy(b[12:], v4b[:])
			exact = v4bits > 1
		case 2: // IPv4-translated
			b = [16]byte{8: 0xff, 9: 0xff}
			copy(b[12:], v4b[:])
		case 3: // NAT64 well-known prefix
			b = netip.MustParseAddr("64:ff9b::").As16()
			copy(b[12:], v4b[:])
		case 4: // NAT64 local-use prefix, any length, any operator bits
			bits := []int{48, 56, 64, 96}[y%4]
			copy(b[:6], []byte{0, 0x64, 0xff, 0x9b, 0, 1})
			b = rfc6052(netip.PrefixFrom(netip.AddrFrom16(b), bits).Masked(), bits, v4).As16()
			exact = false // the prefix length is not visible in the address
		case 5: // 6to4, any subnet and interface
			b[0], b[1] = 0x20, 0x02
			copy(b[2:6], v4b[:])
		case 6: // Teredo, any server, flags and port
			b[0], b[1], b[2], b[3] = 0x20, 0x01, 0, 0
			for i := range v4b {
				b[12+i] = ^v4b[i]
			}
		case 7: // Teredo server position
			b[0], b[1], b[2], b[3] = 0x20, 0x01, 0, 0
			copy(b[4:8], v4b[:])
			exact = false
		}
		ip := netip.AddrFrom16(b)
		got, ok := EmbeddedIPv4(ip)
		if !ok && !(kind%8 == 1 && v4bits <= 1) {
			t.Fatalf("EmbeddedIPv4(%s) found nothing", ip)
		}
		if exact && got != v4 {
			t.Fatalf("EmbeddedIPv4(%s) = %s, want %s", ip, got, v4)
		}
		if e, _ := embeddingOf(ip); kind%8 == 7 && e.server != v4 {
			t.Fatalf("embeddingOf(%s).server = %s, want %s", ip, e.server, v4)
		}
		if kind%8 == 0 {
			if Blocked(ip) != Blocked(v4) {
				t.Fatalf("Blocked(%s) = %v, Blocked(%s) = %v", ip, Blocked(ip), v4, Blocked(v4))
			}
		} else if !Blocked(ip) {
			t.Fatalf("Blocked(%s) = false", ip)
		}
		checkEmbedding(t, ip)
	})
}

// checkEmbedding checks that ip is blocked if it embeds a blocked IPv4
// address, and that every embedding form but IPv4-mapped is blocked.
func checkEmbedding(t *testing.T, ip netip.Addr) {
	t.Helper()
	v4, ok := EmbeddedIPv4(ip)
	if !ok {
		return
	}
	if !v4.Is4() {
		t.Fatalf("EmbeddedIPv4(%s) = %s, not IPv4", ip, v4)
	}
	if Blocked(v4) && !Blocked(ip) {
		t.Fatalf("%s embeds blocked %s but is not blocked", ip, v4)
	}
	if !ip.Is4In6() && !Blocked(ip) {
		t.Fatalf("%s embeds %s but is not blocked", ip, v4)
	}
}
