package ssrf

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// Tests never resolve names over the network: checkURL gets a fake
// resolver, and CheckURL itself is only called with IP literals and URLs
// refused before any lookup.

// resolverFunc adapts a function to the resolver interface.
type resolverFunc func(ctx context.Context, network, host string) ([]netip.Addr, error)

func (f resolverFunc) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return f(ctx, network, host)
}

var errNoSuchHost = errors.New("no such host")

// fakeDNS answers from table, keyed by lower-case name without a trailing
// dot; other names fail. It records the names looked up.
type fakeDNS struct {
	t     *testing.T
	table map[string][]string
	mu    sync.Mutex
	asked []string
}

func (f *fakeDNS) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	f.t.Helper()
	if network != "ip" {
		f.t.Errorf("LookupNetIP network = %q, want ip", network)
	}
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > lookupTimeout {
		f.t.Errorf("LookupNetIP(%s) without a bounded deadline", host)
	}
	f.mu.Lock()
	f.asked = append(f.asked, host)
	f.mu.Unlock()
	answers, ok := f.table[strings.ToLower(strings.TrimSuffix(host, "."))]
	if !ok {
		return nil, errNoSuchHost
	}
	var addrs []netip.Addr
	for _, a := range answers {
		addrs = append(addrs, netip.MustParseAddr(a))
	}
	return addrs, nil
}

// noDNS is a resolver that fails the test if it is used.
func noDNS(t *testing.T) resolverFunc {
	return func(_ context.Context, _, host string) ([]netip.Addr, error) {
		t.Errorf("unexpected lookup of %q", host)
		return nil, errNoSuchHost
	}
}

var ctxb = context.Background()

func TestCheckURLShape(t *testing.T) {
	t.Parallel()
	long := "https://93.184.215.14/"
	long += strings.Repeat("a", 2048-len(long)) // store.CheckURL's bound
	for _, tc := range []struct {
		raw, want string // want "" for accepted
	}{
		{long, ""},
		{long + "a", "longer than 2048 bytes"},
		{"https://93.184.215.14/hook?x=1#frag", ""},
		{"HTTP://93.184.215.14/", ""},
		{"http://93.184.215.14:8080/", ""},
		{"https://[2606:4700:4700::1111]:443/", ""},
		{"ftp://example.com/hook", "scheme must be http or https"},
		{"file:///etc/passwd", "scheme must be http or https"},
		{"gopher://example.com/", "scheme must be http or https"},
		{"example.com/hook", "scheme must be http or https"},
		{"//example.com/hook", "scheme must be http or https"},
		{"", "scheme must be http or https"},
		{"http:///no-host", "has no host"},
		{"http://:80/", "has no host"},
		{"http:example.com", "has no host"},
		{"https://user:pass@example.com/hook", "must not contain credentials"},
		{"https://user@93.184.215.14/", "must not contain credentials"},
		{"http://[::1", "does not parse as a URL"},
		{"http://exa mple.com/", "does not parse as a URL"},
		{"http://%2e%2e/", "does not parse as a URL"},
	} {
		for _, allowPrivate := range []bool{false, true} {
			err := checker{noDNS(t), time.Second}.checkURL(ctxb, tc.raw, allowPrivate)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("checkURL(%.60q, %v) = %v, want %q", tc.raw, allowPrivate, err, tc.want)
			}
		}
	}
}

// TestCheckURLNumericSpellings checks that IPv4 addresses written other
// than in dotted decimal are refused, whether or not private networks are
// allowed, with the dotted-decimal form in the error.
func TestCheckURLNumericSpellings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		host, dotted string // dotted "" for an invalid host
	}{
		{"2130706433", "127.0.0.1"},
		{"2130706433.", "127.0.0.1"},
		{"0x7f000001", "127.0.0.1"},
		{"0X7F000001", "127.0.0.1"},
		{"0x7f000001.", "127.0.0.1"},
		{"017700000001", "127.0.0.1"},
		{"0177.0.0.1", "127.0.0.1"},
		{"0177.0.0.01", "127.0.0.1"},
		{"127.0.0.01", "127.0.0.1"},
		{"127.000.000.001", "127.0.0.1"},
		{"127.1", "127.0.0.1"},
		{"127.0.1", "127.0.0.1"},
		{"127.1.", "127.0.0.1"},
		{"0x7f.1", "127.0.0.1"},
		{"0x7f.0.0.0x1", "127.0.0.1"},
		{"0x7F.0X0.00.1", "127.0.0.1"},
		{"127.0.0.1.", "127.0.0.1"},
		{"10.1.1", "10.1.0.1"},
		{"10.1", "10.0.0.1"},
		{"167772161", "10.0.0.1"},
		{"010.0.0.1", "8.0.0.1"},
		{"0xa9fea9fe", "169.254.169.254"},
		{"169.254.43518", "169.254.169.254"},
		{"0251.0376.0251.0376", "169.254.169.254"},
		{"0xc0.0xa8.0x1.0x1", "192.168.1.1"},
		{"3232235777", "192.168.1.1"},
		{"0", "0.0.0.0"},
		{"0x", "0.0.0.0"},
		{"0.0", "0.0.0.0"},
		{"4294967295", "255.255.255.255"},
		// Public addresses too: the notation is refused, not the address.
		{"134744072", "8.8.8.8"},
		{"8.8.8.8.", "8.8.8.8"},
		{"0x8.0x8.0x8.0x8", "8.8.8.8"},
		{"1.1", "1.0.0.1"},

		// Numeric last label, but no valid address: invalid hosts.
		{"4294967296", ""},
		{"99999999999999999999999999", ""},
		{"0x100000000", ""},
		{"1.2.3.4.5", ""},
		{"256.0.0.1", ""},
		{"1.256.0.1", ""},
		{"1.2.3.256", ""},
		{"1.2.65536", ""},
		{"1.16777216", ""},
		{"08.0.0.1", ""},
		{"0x1g.1", ""},
		{"1..1", ""},
		{".1", ""},
		{"foo.123", ""},
		{"foo.0x1f", ""},
		{"example.com.0", ""},
	} {
		raw := "http://" + tc.host + ":8080/hook"
		for _, allowPrivate := range []bool{false, true} {
			err := checker{noDNS(t), time.Second}.checkURL(ctxb, raw, allowPrivate)
			want := "neither a host name nor a dotted-decimal IPv4 address"
			if tc.dotted != "" {
				want = "in a non-standard notation: write it in dotted-decimal form, " + tc.dotted
			}
			var be *BlockedError
			if err == nil || !strings.Contains(err.Error(), want) || errors.As(err, &be) {
				t.Errorf("checkURL(%q, %v) = %v, want error containing %q", raw, allowPrivate, err, want)
			}
		}
		if got, ok := parseLooseIPv4(tc.host); tc.dotted != "" && (!ok || got.String() != tc.dotted) || tc.dotted == "" && ok {
			t.Errorf("parseLooseIPv4(%q) = %s, %v; want %q", tc.host, got, ok, tc.dotted)
		}
	}
}

// TestParseHost covers what url.Parse already refuses, in case it stops
// refusing it.
func TestParseHost(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ host, want string }{
		{"::ffff:127.1", "not a valid IPv6 address"},
		{"1.2.3.4:5", "not a valid IPv6 address"},
		{"fe80::1%eth0", "IPv6 zone identifier"},
		{"127.0.0.1%eth0", "IPv6 zone identifier"},
		{"１２７.０.０.１", "must be ASCII"},
		{"0x7f000001", "dotted-decimal form, 127.0.0.1"},
		{"example..com", "empty label"},
		{"", "empty label"},
	} {
		if _, err := parseHost(tc.host); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseHost(%q) = %v, want %q", tc.host, err, tc.want)
		}
	}
	for _, tc := range []struct{ host, ip string }{
		{"example.com", ""}, {"example.com.", ""}, {"xn--bcher-kva.example", ""}, {"_svc.example", ""},
		{"1.2.3.4", "1.2.3.4"}, {"::1", "::1"}, {"::ffff:1.2.3.4", "::ffff:1.2.3.4"},
	} {
		ip, err := parseHost(tc.host)
		if err != nil || tc.ip == "" && ip.IsValid() || tc.ip != "" && ip.String() != tc.ip {
			t.Errorf("parseHost(%q) = %s, %v; want %q", tc.host, ip, err, tc.ip)
		}
	}
}

func TestEndsInNumber(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		host string
		want bool
	}{
		{"1.2.3.4", true}, {"1.2.3.4.", true}, {"a.1", true}, {"0x", true}, {"a.0XfF", true}, {"0", true},
		{"example.com", false}, {"1e100.net", false}, {"123.example", false}, {"0x7g", false},
		{"a.0x1.com", false}, {"1.2.3.4a", false}, {"x", false}, {".", false}, {"a..", false}, {"1..", false},
	} {
		if got := endsInNumber(tc.host); got != tc.want {
			t.Errorf("endsInNumber(%q) = %v, want %v", tc.host, got, tc.want)
		}
	}
}

func TestCheckURLZonesAndNonASCII(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ raw, want string }{
		{"http://[fe80::1%25eth0]/", "IPv6 zone identifier"},
		{"http://[fe80::1%25eth0]:8080/hook", "IPv6 zone identifier"},
		{"http://[::1%25lo]/", "IPv6 zone identifier"},
		{"http://[2606:4700:4700::1111%25eth0]/", "IPv6 zone identifier"},
		{"http://[fe80::1%251]/", "IPv6 zone identifier"},
		{"http://１２７.０.０.１/", "must be ASCII"},
		{"http://127。0。0。1/", "must be ASCII"},
		{"http://bücher.example/", "must be ASCII"},
		{"http://b%C3%BCcher.example/", "must be ASCII"},
		{"http://[::ffff:127.1]/", "does not parse as a URL"},
		{"http://[1.2.3.4:5]/", "does not parse as a URL"},
		{"http://[0x7f000001]/", "does not parse as a URL"},
		{"http://1.2.3.4../", "empty label"},
		{"http://..example.com/", "empty label"},
		{"http://a..b/", "empty label"},
		{"http://./", "empty label"},
	} {
		for _, allowPrivate := range []bool{false, true} {
			err := checker{noDNS(t), time.Second}.checkURL(ctxb, tc.raw, allowPrivate)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("checkURL(%q, %v) = %v, want %q", tc.raw, allowPrivate, err, tc.want)
			}
		}
	}
}

// TestCheckURLLiterals checks IP literal hosts, through the exported
// CheckURL: literals are never looked up.
func TestCheckURLLiterals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		raw     string
		blocked string // the BlockedError's IP, "" if accepted
		mention string // an embedded address the message names
	}{
		{"http://127.0.0.1:8080/hook", "127.0.0.1", ""},
		{"http://10.0.0.1/", "10.0.0.1", ""},
		{"http://172.16.5.4/", "172.16.5.4", ""},
		{"http://192.168.0.10/", "192.168.0.10", ""},
		{"http://169.254.169.254/latest/meta-data/", "169.254.169.254", ""},
		{"http://0.0.0.0/", "0.0.0.0", ""},
		{"http://100.64.0.1/", "100.64.0.1", ""},
		{"http://192.0.0.9/", "192.0.0.9", ""},
		{"http://224.0.0.1/", "224.0.0.1", ""},
		{"http://255.255.255.255/", "255.255.255.255", ""},
		{"http://[::1]/", "::1", ""},
		{"http://[0:0:0:0:0:0:0:1]:9/", "::1", ""},
		{"http://[::]/", "::", ""},
		{"http://[fc00::1]/", "fc00::1", ""},
		{"http://[fe80::1]/", "fe80::1", ""},
		{"http://[ff02::1]/", "ff02::1", ""},
		{"http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1", "127.0.0.1"},
		{"http://[::ffff:7f00:1]/", "::ffff:127.0.0.1", "127.0.0.1"},
		{"http://[::127.0.0.1]/", "::7f00:1", "127.0.0.1"},
		{"http://[64:ff9b::a9fe:a9fe]/latest/meta-data/", "64:ff9b::a9fe:a9fe", "169.254.169.254"},
		{"http://[64:ff9b:1::c0a8:101]/", "64:ff9b:1::c0a8:101", "192.168.1.1"},
		{"http://[2002:7f00:1::1]/", "2002:7f00:1::1", "127.0.0.1"},
		{"http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/", "2001:0:4136:e378:8000:63bf:f5ff:fffe", "10.0.0.1"},
		{"http://[2001:db8::1]/", "2001:db8::1", ""},

		{"https://93.184.215.14/hook", "", ""},
		{"http://8.8.8.8:8080/", "", ""},
		{"http://1.1.1.1/", "", ""},
		{"http://[2606:4700:4700::1111]/", "", ""},
		{"http://[::ffff:8.8.8.8]/", "", ""},
		{"http://[2001:4:112::1]/", "", ""},
	} {
		err := CheckURL(ctxb, tc.raw, false)
		var be *BlockedError
		switch {
		case tc.blocked == "" && err != nil:
			t.Errorf("CheckURL(%s) = %v, want accepted", tc.raw, err)
		case tc.blocked != "" && !errors.As(err, &be):
			t.Errorf("CheckURL(%s) = %v, want *BlockedError", tc.raw, err)
		case tc.blocked != "" && (be.IP.String() != tc.blocked || be.Host != "" || !Blocked(be.IP)):
			t.Errorf("CheckURL(%s) = %#v, want IP %s", tc.raw, be, tc.blocked)
		case tc.mention != "" && !strings.Contains(err.Error(), "IPv4 "+tc.mention):
			t.Errorf("CheckURL(%s) = %v, want it to name %s", tc.raw, err, tc.mention)
		}
		if err := CheckURL(ctxb, tc.raw, true); err != nil {
			t.Errorf("CheckURL(%s, allowPrivate) = %v", tc.raw, err)
		}
	}
}

// TestCheckURLLocalNames checks that names local by definition are refused
// without a lookup unless private networks are allowed, and that names that
// merely look similar are looked up.
func TestCheckURLLocalNames(t *testing.T) {
	t.Parallel()
	for _, host := range []string{
		"localhost", "LOCALHOST.", "LocalHost", "api.localhost", "a.b.localhost.",
		"printer.local", "PRINTER.LOCAL.", "local",
		"router.home.arpa", "home.arpa", "arpa",
		"metadata.google.internal", "internal", "svc.internal.",
		"host.localdomain", "localhost.localdomain", "localdomain",
		"intranet", "metadata", "redis", "com.",
	} {
		raw := "http://" + host + ":8080/hook"
		err := checker{noDNS(t), time.Second}.checkURL(ctxb, raw, false)
		var be *BlockedError
		if !errors.As(err, &be) || be.Host != host || be.IP.IsValid() || !strings.Contains(err.Error(), "non-public address") {
			t.Errorf("checkURL(%s) = %v, want *BlockedError for the name", raw, err)
		}
		if err := (checker{noDNS(t), time.Second}).checkURL(ctxb, raw, true); err != nil {
			t.Errorf("checkURL(%s, allowPrivate) = %v", raw, err)
		}
		if err := CheckURL(ctxb, raw, false); !errors.As(err, &be) {
			t.Errorf("CheckURL(%s) = %v, want *BlockedError", raw, err)
		}
	}
	dns := &fakeDNS{t: t, table: map[string][]string{}}
	similar := []string{"localhost.example.com", "mylocalhost.com", "local.example.com", "example.local.com",
		"example.internal.com", "home.arpa.example", "localdomain.example", "xlocal.dev"}
	for _, host := range similar {
		dns.table[host] = []string{"93.184.215.14"}
		if err := (checker{dns, time.Second}).checkURL(ctxb, "https://"+host+"/", false); err != nil {
			t.Errorf("checkURL(https://%s/) = %v, want accepted", host, err)
		}
	}
	if len(dns.asked) != len(similar) {
		t.Errorf("looked up %q, want %q", dns.asked, similar)
	}
}

// TestCheckURLResolvedNames checks names against the fake resolver's
// answers.
func TestCheckURLResolvedNames(t *testing.T) {
	t.Parallel()
	dns := &fakeDNS{t: t, table: map[string][]string{
		"public.example":         {"93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"},
		"public6.example":        {"2606:4700:4700::1111"},
		"as112.example":          {"192.175.48.1"},
		"mapped-public.example":  {"::ffff:8.8.8.8"},
		"private.example":        {"10.0.0.5"},
		"loopback.example":       {"127.0.0.1", "::1"},
		"mixed.example":          {"93.184.215.14", "127.0.0.1"},
		"mixed6.example":         {"2606:4700:4700::1111", "fd00::1"},
		"metadata.example":       {"169.254.169.254"},
		"nat64.example":          {"64:ff9b::a9fe:a9fe"},
		"sixtofour.example":      {"8.8.8.8", "2002:c0a8:101::1"},
		"mapped-private.example": {"::ffff:10.0.0.1"},
		"cgnat.example":          {"100.64.0.1"},
		"empty.example":          {},
	}}
	for _, tc := range []struct {
		host    string
		blocked string // the refused address, "" if accepted
		mention string
	}{
		{"public.example", "", ""},
		{"PUBLIC.example.", "", ""},
		{"public6.example", "", ""},
		{"as112.example", "", ""},
		{"mapped-public.example", "", ""},
		{"empty.example", "", ""},
		{"nxdomain.example", "", ""}, // does not resolve yet: the dialer checks
		{"private.example", "10.0.0.5", ""},
		{"loopback.example", "127.0.0.1", ""},
		{"mixed.example", "127.0.0.1", ""},
		{"mixed6.example", "fd00::1", ""},
		{"metadata.example", "169.254.169.254", ""},
		{"nat64.example", "64:ff9b::a9fe:a9fe", "169.254.169.254"},
		{"sixtofour.example", "2002:c0a8:101::1", "192.168.1.1"},
		{"mapped-private.example", "::ffff:10.0.0.1", "10.0.0.1"},
		{"cgnat.example", "100.64.0.1", ""},
	} {
		raw := "https://" + tc.host + "/hook"
		err := checker{dns, time.Second}.checkURL(ctxb, raw, false)
		var be *BlockedError
		switch {
		case tc.blocked == "" && err != nil:
			t.Errorf("checkURL(%s) = %v, want accepted", raw, err)
		case tc.blocked != "" && !errors.As(err, &be):
			t.Errorf("checkURL(%s) = %v, want *BlockedError", raw, err)
		case tc.blocked != "" && (be.Host != tc.host || be.IP.String() != tc.blocked):
			t.Errorf("checkURL(%s) = %#v, want host %s, IP %s", raw, be, tc.host, tc.blocked)
		case tc.blocked != "" && !strings.HasPrefix(err.Error(), tc.host+" resolves to "+tc.blocked):
			t.Errorf("checkURL(%s) = %q", raw, err)
		case tc.mention != "" && !strings.Contains(err.Error(), "IPv4 "+tc.mention):
			t.Errorf("checkURL(%s) = %v, want it to name %s", raw, err, tc.mention)
		}
		// Allowing private networks skips the lookup.
		if err := (checker{noDNS(t), time.Second}).checkURL(ctxb, raw, true); err != nil {
			t.Errorf("checkURL(%s, allowPrivate) = %v", raw, err)
		}
	}
}

// TestCheckURLLookupTimeout checks that a lookup that does not answer is
// abandoned after the timeout and the URL accepted.
func TestCheckURLLookupTimeout(t *testing.T) {
	t.Parallel()
	hang := resolverFunc(func(ctx context.Context, _, _ string) ([]netip.Addr, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	start := time.Now()
	if err := (checker{hang, 50 * time.Millisecond}).checkURL(ctxb, "https://slow.example/", false); err != nil {
		t.Fatalf("checkURL = %v, want accepted", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("checkURL took %v with a 50ms lookup timeout", d)
	}

	// A caller's earlier deadline wins.
	ctx, cancel := context.WithTimeout(ctxb, 20*time.Millisecond)
	defer cancel()
	if err := (checker{hang, time.Hour}).checkURL(ctx, "https://slow.example/", false); err != nil {
		t.Fatalf("checkURL = %v, want accepted", err)
	}
}
