package links

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// blockedRanges are never dialled unless allowed by Guard.Allow. The list
// follows the IANA special-purpose registries plus known cloud-metadata
// endpoints. IPv4-mapped IPv6 addresses are unmapped before the check.
var blockedRanges = [...]struct {
	prefix netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified / this network"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "CGNAT (and Alibaba Cloud metadata 100.100.100.200)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("168.63.129.16/32"), "cloud metadata (Azure)"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (and cloud metadata 169.254.169.254)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments (and Oracle Cloud metadata 192.0.0.192)"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved / broadcast"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible (deprecated)"},
	{netip.MustParsePrefix("64:ff9b::/96"), "NAT64"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "NAT64 (local use)"},
	{netip.MustParsePrefix("100::/64"), "discard"},
	{netip.MustParsePrefix("2001::/32"), "Teredo"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("2002::/16"), "6to4"},
	{netip.MustParsePrefix("fc00::/7"), "private (ULA; and cloud metadata fd00:ec2::254)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local (deprecated)"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// Guard decides which IP addresses may be dialled. The zero Guard refuses
// every address in the blocked ranges (loopback, RFC 1918 and ULA private,
// link-local, CGNAT, unspecified, multicast, reserved, documentation, NAT64,
// 6to4/Teredo, and cloud metadata such as 169.254.169.254, fd00:ec2::254,
// 100.100.100.200, 192.0.0.192 and 168.63.129.16) and allows the rest.
//
// Guard is a value; its methods are safe for concurrent use as long as Allow
// is not modified.
type Guard struct {
	// Allow lists prefixes that are dialled even though they are blocked:
	// the documented escape hatch for tests on httptest servers, e.g.
	// netip.MustParsePrefix("127.0.0.1/32"). Keep it empty in production.
	Allow []netip.Prefix
}

// Check returns nil if addr may be dialled and a *BlockedAddressError
// (errors.Is ErrBlockedAddress) if not. An invalid addr is refused.
func (g Guard) Check(addr netip.Addr) error {
	if !addr.IsValid() {
		return &BlockedAddressError{Addr: addr, Reason: "invalid address"}
	}
	addr = addr.Unmap().WithZone("")
	for _, p := range g.Allow {
		if p.Contains(addr) {
			return nil
		}
	}
	for _, r := range blockedRanges {
		if r.prefix.Contains(addr) {
			return &BlockedAddressError{Addr: addr, Reason: r.reason}
		}
	}
	return nil
}

// Control is a net.Dialer.Control function: it checks the resolved address
// of every connection attempt (after DNS, on every redirect hop and every
// Happy-Eyeballs attempt), which is what defeats redirects to internal
// addresses and DNS rebinding. Only TCP is allowed.
func (g Guard) Control(network, address string, _ syscall.RawConn) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return fmt.Errorf("%w: network %q", ErrBlockedAddress, network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: unparsable address %q", ErrBlockedAddress, address)
	}
	return g.Check(ap.Addr())
}

// Dialer returns a net.Dialer whose Control is g.Control.
func (g Guard) Dialer() *net.Dialer {
	return &net.Dialer{
		Timeout:   5 * time.Second,
		KeepAlive: 30 * time.Second,
		Control:   g.Control,
	}
}

// NewTransport returns an *http.Transport that dials through g's guard and
// never uses a proxy (with a proxy the guard would only see the proxy's
// address). Timeouts and header size are bounded. Connections are kept
// alive and reused: up to DefaultMaxConcurrentFetches idle ones per host
// (as many as an Expander follows at once by default), 64 in all, each
// for 90 s. The guard applies when a connection is dialled; a reused
// connection goes to the address already checked.
func (g Guard) NewTransport() *http.Transport {
	d := g.Dialer()
	return &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           64,
		MaxIdleConnsPerHost:    DefaultMaxConcurrentFetches,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    5 * time.Second,
		ResponseHeaderTimeout:  10 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
}

// NewClient returns an *http.Client using g.NewTransport that does not
// follow redirects (the Expander follows them by hand, checking each hop) and
// keeps no cookies. This is the client an Expander uses when
// Options.HTTPClient is nil.
func (g Guard) NewClient() *http.Client {
	return &http.Client{
		Transport:     g.NewTransport(),
		CheckRedirect: noRedirect,
	}
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
