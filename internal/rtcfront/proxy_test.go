package rtcfront_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/rtcfront"
	"github.com/switchboard/switchboard/internal/token"
)

// from posts an offer from the given loopback address, with the headers
// given, and returns the status.
func from(t *testing.T, local, target, offer string, hdr ...string) int {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	defer c.CloseIdleConnections()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, target, strings.NewReader(offer))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/sdp")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode
}

// TestPeersBehindATrustedProxy: behind a reverse proxy the front trusts,
// peers count against MaxPeersPerSource by their own addresses, which the
// proxy appends to X-Forwarded-For; what a peer writes there itself
// counts for nothing. A request that does not come from a trusted proxy
// counts against its own address whatever the header says. Before, every
// peer behind a proxy counted as the proxy, and MaxPeersPerSource held
// the whole proxy to 4 peers.
func TestPeersBehindATrustedProxy(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	_, direct := startFront(t, c.Nodes[0], func(cfg *rtcfront.Config) {
		cfg.MaxPeersPerSource = 1
		// The proxy reaches the node from 127.0.0.1.
		cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = ""
	proxy := httptest.NewServer(httputil.NewSingleHostReverseProxy(u))
	t.Cleanup(proxy.Close)
	viaProxy := proxy.URL + rtcfront.Path
	offer := func() string {
		_, o := newPeer(t, rtcfront.Protocol, nil)
		return o
	}

	// Two peers behind the proxy, one place each.
	if code := from(t, "127.0.0.10", viaProxy+"?room=lobby&user=a", offer()); code != http.StatusCreated {
		t.Fatalf("the first peer at 127.0.0.10 behind the proxy: %d, want 201", code)
	}
	if code := from(t, "127.0.0.11", viaProxy+"?room=lobby&user=b", offer()); code != http.StatusCreated {
		t.Errorf("a peer at 127.0.0.11 behind the proxy: %d, want 201 (counted apart from 127.0.0.10)", code)
	}
	// A second from .10, who claims to be someone else: the proxy
	// appends .10, and that is what counts.
	if code := from(t, "127.0.0.10", viaProxy+"?room=lobby&user=c", offer(), "X-Forwarded-For", "127.0.0.99"); code != http.StatusTooManyRequests {
		t.Errorf("a second peer at 127.0.0.10 behind the proxy, spoofing the header: %d, want 429", code)
	}

	// Straight to the node from an address it does not trust: the
	// header changes nothing.
	if code := from(t, "127.0.0.20", direct+"?room=lobby&user=d", offer(), "X-Forwarded-For", "127.0.0.21"); code != http.StatusCreated {
		t.Fatalf("the first peer at 127.0.0.20: %d, want 201", code)
	}
	if code := from(t, "127.0.0.20", direct+"?room=lobby&user=e", offer(), "X-Forwarded-For", "127.0.0.22"); code != http.StatusTooManyRequests {
		t.Errorf("a second peer at 127.0.0.20 naming another address in X-Forwarded-For: %d, want 429", code)
	}
}

// TestForwardedForIgnoredByDefault: a front that trusts no proxy ignores
// X-Forwarded-For, from loopback too.
func TestForwardedForIgnoredByDefault(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	_, direct := startFront(t, c.Nodes[0], func(cfg *rtcfront.Config) { cfg.MaxPeersPerSource = 1 })
	_, o1 := newPeer(t, rtcfront.Protocol, nil)
	_, o2 := newPeer(t, rtcfront.Protocol, nil)
	if code := from(t, "127.0.0.2", direct+"?room=lobby&user=a", o1, "X-Forwarded-For", "192.0.2.1"); code != http.StatusCreated {
		t.Fatalf("the first peer: %d, want 201", code)
	}
	if code := from(t, "127.0.0.2", direct+"?room=lobby&user=b", o2, "X-Forwarded-For", "192.0.2.2"); code != http.StatusTooManyRequests {
		t.Errorf("a second peer from the same address naming another in X-Forwarded-For: %d, want 429", code)
	}
}

// TestProxyBesideTheNodeIsNotOneSource: the peers that reach the front
// through a reverse proxy on the node's own host, not listed in
// TrustedProxies, are not held to MaxPeersPerSource as one source, nor
// shut out together by refused tokens: the node's HTTP listener does
// not count such a proxy per address either, and the docs said it
// needed no listing. Before, the front counted them all as 127.0.0.1:
// the fifth got 429, and three forged tokens locked all of them out
// for 10 s.
func TestProxyBesideTheNodeIsNotOneSource(t *testing.T) {
	priv, pubFile := nodetest.TokenKey(t)
	stranger, _ := nodetest.TokenKey(t)
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(_ int, cfg *node.Config) { cfg.TokenKey = pubFile }})
	c.WaitRoomsReady(settle)
	mint := func(key ed25519.PrivateKey, user string) string {
		tok, err := token.Mint(key, token.Claims{User: user, Service: c.Config.Service, Expires: time.Now().Add(time.Hour)}, time.Now().Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + tok
	}
	_, direct := startFront(t, c.Nodes[0], func(cfg *rtcfront.Config) { cfg.MaxPeersPerSource = 1 })
	// The node's HTTP listens on 127.0.0.1: a request from 127.0.0.1 is
	// one from its own host, to the address it came from.
	for i := range 3 {
		_, o := newPeer(t, rtcfront.Protocol, nil)
		if code := from(t, "127.0.0.1", direct+"?room=lobby", o, "Authorization", mint(stranger, fmt.Sprint("eve", i))); code != http.StatusForbidden {
			t.Fatalf("forged token %d through the proxy: %d, want 403", i+1, code)
		}
	}
	for i := range 2 {
		_, o := newPeer(t, rtcfront.Protocol, nil)
		if code := from(t, "127.0.0.1", direct+"?room=lobby", o, "Authorization", mint(priv, fmt.Sprint("ann", i))); code != http.StatusCreated {
			t.Fatalf("peer %d through the proxy, after 3 forged tokens: %d, want 201", i+1, code)
		}
	}
	// Another loopback address is a source of its own, held to the limit.
	_, o1 := newPeer(t, rtcfront.Protocol, nil)
	_, o2 := newPeer(t, rtcfront.Protocol, nil)
	if code := from(t, "127.0.0.3", direct+"?room=lobby", o1, "Authorization", mint(priv, "bob1")); code != http.StatusCreated {
		t.Fatalf("a peer at 127.0.0.3: %d, want 201", code)
	}
	if code := from(t, "127.0.0.3", direct+"?room=lobby", o2, "Authorization", mint(priv, "bob2")); code != http.StatusTooManyRequests {
		t.Errorf("a second peer at 127.0.0.3: %d, want 429", code)
	}
}
