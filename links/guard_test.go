package links

import (
	"errors"
	"net/netip"
	"testing"
)

func TestGuardCheck(t *testing.T) {
	t.Parallel()
	blocked := []string{
		"127.0.0.1", "127.255.255.254", "::1", "::ffff:127.0.0.1", "::127.0.0.1",
		"0.0.0.0", "0.1.2.3", "::",
		"10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "fd12:3456::1", "fc00::1",
		"169.254.169.254", "169.254.170.2", "fe80::1", "fe80::1%eth0",
		"100.64.0.1", "100.100.100.200", "100.127.255.255",
		"fd00:ec2::254", "192.0.0.192", "168.63.129.16",
		"224.0.0.1", "239.255.255.250", "ff02::1", "255.255.255.255", "240.0.0.1",
		"64:ff9b::7f00:1", "2002:7f00:1::", "2001:0:4136:e378::1", "198.18.0.1", "192.0.2.1", "2001:db8::1",
	}
	allowed := []string{"8.8.8.8", "93.184.216.34", "100.63.255.255", "100.128.0.1", "172.32.0.1", "2a00:1450:4010::64", "::ffff:8.8.8.8", "1.1.1.1"}
	var g Guard
	for _, s := range blocked {
		err := g.Check(netip.MustParseAddr(s))
		var be *BlockedAddressError
		if !errors.As(err, &be) || !errors.Is(err, ErrBlockedAddress) || be.Reason == "" {
			t.Errorf("Check(%s) = %v; want *BlockedAddressError with a reason", s, err)
		}
	}
	for _, s := range allowed {
		if err := g.Check(netip.MustParseAddr(s)); err != nil {
			t.Errorf("Check(%s) = %v; want nil", s, err)
		}
	}
	if err := g.Check(netip.Addr{}); !errors.Is(err, ErrBlockedAddress) {
		t.Errorf("Check(invalid) = %v; want ErrBlockedAddress", err)
	}

	hatch := Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	if err := hatch.Check(netip.MustParseAddr("127.0.0.1")); err != nil {
		t.Errorf("hatch: Check(127.0.0.1) = %v; want allowed", err)
	}
	if err := hatch.Check(netip.MustParseAddr("::ffff:127.0.0.1")); err != nil {
		t.Errorf("hatch: Check(::ffff:127.0.0.1) = %v; want allowed (unmapped)", err)
	}
	for _, s := range []string{"127.0.0.2", "::1", "10.0.0.1", "169.254.169.254"} {
		if err := hatch.Check(netip.MustParseAddr(s)); !errors.Is(err, ErrBlockedAddress) {
			t.Errorf("hatch: Check(%s) = %v; want still blocked", s, err)
		}
	}
}

func TestGuardControl(t *testing.T) {
	t.Parallel()
	var g Guard
	tests := []struct {
		network, address string
		ok               bool
	}{
		{"tcp4", "8.8.8.8:443", true},
		{"tcp6", "[2a00:1450:4010::64]:80", true},
		{"tcp4", "127.0.0.1:80", false},
		{"tcp6", "[::ffff:169.254.169.254]:80", false},
		{"tcp6", "[fe80::1%eth0]:80", false},
		{"udp4", "8.8.8.8:53", false},
		{"tcp", "not-an-address", false},
	}
	for _, tc := range tests {
		err := g.Control(tc.network, tc.address, nil)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrBlockedAddress)) {
			t.Errorf("Control(%s, %s) = %v; want ok=%v", tc.network, tc.address, err, tc.ok)
		}
	}
	if g.NewTransport().Proxy != nil {
		t.Error("NewTransport uses a proxy; the guard would only see the proxy's address")
	}
}
