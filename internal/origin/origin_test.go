package origin_test

import (
	"crypto/tls"
	"net/http"
	"testing"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/origin"
	"github.com/switchboard/switchboard/wire"
)

func TestAllowed(t *testing.T) {
	dir := &wire.Directory{Service: "chat.example", Nodes: []directory.Node{{ID: "n1", HTTP: "n1.example:7071"}}}
	// Browsers leave the scheme's default port out of Origin.
	dir443 := &wire.Directory{Service: "chat.example", Nodes: []directory.Node{{ID: "n3", HTTP: "n3.example:443"}, {ID: "n4", HTTP: "n4.example:80"}}}
	for _, tt := range []struct {
		name, host, origin string
		dir                *wire.Directory
		patterns           []string
		want               bool
	}{
		{"no origin: not a browser", "n1.example:7071", "", dir, nil, true},
		{"a node's page", "n2.example:7071", "https://n1.example:7071", dir, nil, true},
		{"the service's name, any port", "n1.example:7071", "https://chat.example", dir, nil, true},
		{"this machine", "n1.example:7071", "http://localhost:3000", dir, nil, true},
		{"a loopback address", "n1.example:7071", "http://127.0.0.2:8080", dir, nil, true},
		{"its own origin reached by address", "10.0.0.1:7071", "http://10.0.0.1:7071", nil, nil, true},
		{"another site", "n1.example:7071", "https://evil.example", dir, nil, false},
		{"a rebinding page: own origin by a name not published", "evil.example:7071", "http://evil.example:7071", dir, nil, false},
		{"a rebinding page, no directory yet", "evil.example:7071", "http://evil.example:7071", nil, nil, false},
		{"a node's page, no directory yet", "n1.example:7071", "https://n1.example:7071", nil, nil, false},
		{"a node's page on the default port", "n2.example:443", "https://n3.example", dir443, nil, true},
		{"a node's page on the default port of plain HTTP", "n2.example:80", "http://n4.example", dir443, nil, true},
		{"the default port of another scheme", "n2.example:443", "http://n3.example", dir443, nil, false},
		{"a pattern with the default port", "n1.example:7071", "https://app.partner.example", dir, []string{"*.partner.example:443"}, true},
		{"a pattern with another port", "n1.example:7071", "https://app.partner.example", dir, []string{"*.partner.example:8443"}, false},
		{"a pattern", "n1.example:7071", "https://app.partner.example", dir, []string{"*.partner.example"}, true},
		{"any page", "n1.example:7071", "https://evil.example", dir, []string{"*"}, true},
		{"an IPv6 page allowed as written", "n1.example:7071", "https://[2001:DB8::5]:8443", dir, []string{"[2001:db8::5]:8443"}, true},
		{"another IPv6 page", "n1.example:7071", "https://[2001:db8::6]:8443", dir, []string{"[2001:db8::5]:8443"}, false},
		{"a bad pattern allows nothing", "n1.example:7071", "https://evil.example", dir, []string{"["}, false},
		{"an origin without a host", "n1.example:7071", "null", dir, nil, false},
		{"an origin that does not parse", "n1.example:7071", "http://%zz", dir, nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := http.NewRequest(http.MethodPost, "http://"+tt.host+"/v1/rtc", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			if got := origin.Allowed(r, tt.dir, tt.patterns); got != tt.want {
				t.Errorf("Allowed(Host %s, Origin %q) = %v, want %v", tt.host, tt.origin, got, tt.want)
			}
		})
	}
}

func TestHostAllowed(t *testing.T) {
	dir := &wire.Directory{Service: "chat.example", Nodes: []directory.Node{{ID: "n1", HTTP: "n1.example:7071"}, {ID: "n3", HTTP: "n3.example:443"}}}
	for _, tt := range []struct {
		name, host string
		// "" for none: a program's request, or a browser page's GET of
		// its own origin over plain HTTP, which has no Sec-Fetch-* (sent
		// only to https, localhost and loopback URLs) and no Origin.
		// "same" for Sec-Fetch-Site: same-origin, "none" for
		// Sec-Fetch-Site: none (a URL typed), "origin" for an Origin
		// naming Host, "cross" for another site's page.
		header   string
		tls      bool
		dir      *wire.Directory
		patterns []string
		want     bool
	}{
		// The name decides, whatever the headers: a program under a name
		// the service does not publish looks like a rebinding page over
		// plain HTTP, so it is refused too, and should use an address, a
		// published name or a name in patterns (--ws-origins).
		{"a rebinding page over plain HTTP", "evil.example:7071", "", false, dir, nil, false},
		{"a rebinding page over plain HTTP, no directory yet", "evil.example:7071", "", false, nil, nil, false},
		{"a rebinding page that sends Sec-Fetch-Site", "evil.example:7071", "same", false, dir, nil, false},
		{"a rebinding page's post", "evil.example:7071", "origin", false, dir, nil, false},
		{"a URL typed under a name not published", "evil.example:7071", "none", false, dir, nil, false},
		{"another site's page under a name not published", "evil.example:7071", "cross", false, dir, nil, false},
		{"a name without a port not published", "evil.example", "", false, dir, nil, false},
		{"no Host", "", "", false, dir, nil, true},
		{"a node's HTTP address", "n1.example:7071", "", false, dir, nil, true},
		{"a node's HTTP address, a page's read", "n1.example:7071", "same", false, dir, nil, true},
		{"a node's HTTP address in capitals", "N1.Example:7071", "", false, dir, nil, true},
		{"a node's address on the default port", "n3.example", "same", true, dir, nil, true},
		{"a node's address on 443 behind a proxy that ends TLS", "n3.example", "", false, dir, nil, true},
		{"a node's name on a port it does not publish", "n1.example", "", true, dir, nil, false},
		{"a node's name, no directory yet", "n1.example:7071", "", false, nil, nil, false},
		{"the service's name", "chat.example:8080", "", false, dir, nil, true},
		{"the service's name without a port", "chat.example", "same", false, dir, nil, true},
		{"an address", "10.0.0.1:7071", "", false, nil, nil, true},
		{"an address, a page's read", "10.0.0.1:7071", "same", false, nil, nil, true},
		{"an IPv6 address", "[2001:db8::1]:7071", "", false, nil, nil, true},
		{"an address without a port", "10.0.0.1", "", false, nil, nil, true},
		{"this machine", "localhost:7071", "", false, nil, nil, true},
		{"a loopback address", "127.0.0.1:7071", "", false, nil, nil, true},
		{"a name patterns allow", "proxy.corp.example", "", false, dir, []string{"*.corp.example"}, true},
		{"a name patterns allow with its port", "proxy.corp.example:7071", "same", false, dir, []string{"*.corp.example:7071"}, true},
		{"a name patterns do not allow", "proxy.corp.example:7071", "", false, dir, []string{"*.corp.example:8080"}, false},
		{"a name patterns allow on any port", "mon.example:7071", "", false, dir, []string{"mon.example:*"}, true},
		// A pattern that names no domain lets any page open a WebSocket;
		// it does not make every name the node's, the attacker's included.
		{"a rebinding page when any page may open a WebSocket", "evil.example:7071", "", false, dir, []string{"*"}, false},
		{"a rebinding page on the default port when any page may", "evil.example", "", false, dir, []string{"*"}, false},
		{"a rebinding page, any host on any port allowed", "evil.example:7071", "", false, dir, []string{"*:*"}, false},
		{"a rebinding page, any host on the node's port allowed", "evil.example:7071", "", false, dir, []string{"*:7071"}, false},
		{"a rebinding page, any dotted name allowed", "evil.example:7071", "", false, dir, []string{"*.*:*"}, false},
		{"a rebinding page, a catch-all among named patterns", "evil.example:7071", "", false, dir, []string{"*.corp.example:*", "*"}, false},
		{"a named pattern beside a catch-all", "proxy.corp.example:7071", "", false, dir, []string{"*", "*.corp.example:*"}, true},
		{"an address when any page may", "10.0.0.1:7071", "", false, dir, []string{"*"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:7071/v1/directory", nil)
			if err != nil {
				t.Fatal(err)
			}
			r.Host = tt.host
			switch tt.header {
			case "same":
				r.Header.Set("Sec-Fetch-Site", "same-origin")
			case "none":
				r.Header.Set("Sec-Fetch-Site", "none")
			case "origin":
				r.Header.Set("Origin", "http://"+tt.host)
			case "cross":
				r.Header.Set("Sec-Fetch-Site", "cross-site")
				r.Header.Set("Origin", "https://elsewhere.example")
			}
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if got := origin.HostAllowed(r, tt.dir, tt.patterns); got != tt.want {
				t.Errorf("HostAllowed(Host %q, %s) = %v, want %v", tt.host, r.Header, got, tt.want)
			}
		})
	}
}

func TestCatchAll(t *testing.T) {
	for _, tt := range []struct {
		pattern string
		want    bool
	}{
		{"*", true},
		{"*:*", true},
		{"*:7071", true},
		{"*.*", true},
		{"?*", true},
		{"[a-z]*:443", true},
		{`*\.*`, true},
		{"https://*", true},
		{"", true},
		{"chat.example.org", false},
		{"*.example.org:443", false},
		{"mon.example:*", false},
		{"*.com", false},
		{"https://*.partner.example", false},
		{"[2001:db8::5]:8443", false},
		{"10.0.0.?:*", false},
		{"[", false},
	} {
		if got := origin.CatchAll(tt.pattern); got != tt.want {
			t.Errorf("CatchAll(%q) = %v, want %v", tt.pattern, got, tt.want)
		}
	}
}

// A pattern that names no domain lets any page open a WebSocket
// (Allowed), not read the stats and the event stream across origins
// (ReadAllowed); a pattern that names one lets its pages do both.
func TestReadAllowed(t *testing.T) {
	dir := &wire.Directory{Service: "chat.example", Nodes: []directory.Node{{ID: "n1", HTTP: "n1.example:7071"}}}
	for _, tt := range []struct {
		name, origin  string
		patterns      []string
		socket, reads bool
	}{
		{"any page", "https://evil.example", []string{"*"}, true, false},
		{"any page on any port", "https://evil.example:8443", []string{"*:*"}, true, false},
		{"a named site beside any page", "https://app.partner.example", []string{"*", "*.partner.example"}, true, true},
		{"another site beside a named one", "https://evil.example", []string{"*", "*.partner.example"}, true, false},
		{"a node's page", "https://n1.example:7071", []string{"*"}, true, true},
		{"this machine", "http://localhost:3000", []string{"*"}, true, true},
		{"no origin: not a browser", "", []string{"*"}, true, true},
		{"another site, no patterns", "https://evil.example", nil, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := http.NewRequest(http.MethodGet, "http://n1.example:7071/v1/stats", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			if got := origin.Allowed(r, dir, tt.patterns); got != tt.socket {
				t.Errorf("Allowed(Origin %q, %q) = %v, want %v", tt.origin, tt.patterns, got, tt.socket)
			}
			if got := origin.ReadAllowed(r, dir, tt.patterns); got != tt.reads {
				t.Errorf("ReadAllowed(Origin %q, %q) = %v, want %v", tt.origin, tt.patterns, got, tt.reads)
			}
		})
	}
}
