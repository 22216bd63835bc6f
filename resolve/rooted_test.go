package resolve

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeSystem is a system resolver that records the names it is asked for.
// It knows _switchboard._tcp.srv.test (one target, node.srv.test, with
// one address) and the addresses of plain.test; every other name is not
// found.
type fakeSystem struct {
	mu    sync.Mutex
	asked []string // "SRV _switchboard._tcp.srv.test.", "IP plain.test", ...
}

func (f *fakeSystem) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, s)
}

func (f *fakeSystem) names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.asked)
}

// LookupSRV builds the name as net.Resolver does: the name given is kept
// as it is, with or without its final dot.
func (f *fakeSystem) LookupSRV(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
	target := "_" + service + "._" + proto + "." + name
	f.record("SRV " + target)
	if strings.EqualFold(strings.TrimSuffix(name, "."), "srv.test") {
		return target, []*net.SRV{{Target: "node.srv.test.", Port: 7001, Priority: 0, Weight: 1}}, nil
	}
	return "", nil, &net.DNSError{Err: "no such host", Name: target, IsNotFound: true}
}

func (f *fakeSystem) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	f.record("IP " + host)
	switch strings.TrimSuffix(host, ".") {
	case "node.srv.test":
		return []netip.Addr{netip.MustParseAddr("127.0.6.1")}, nil
	case "plain.test":
		return []netip.Addr{netip.MustParseAddr("127.0.6.2")}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// A service name with a final dot is rooted: the system resolver is asked
// for it as it is, final dot included, so that it does not try the search
// list's suffixes first (a Kubernetes pod's resolv.conf has ndots:5). A
// name without one is passed on without one, for the search list to apply
// as the caller asked. Messages name the service without the dot either
// way.
func TestLookupKeepsARootedNameRooted(t *testing.T) {
	tests := []struct {
		service string
		want    []string
		asked   []string
	}{
		{"srv.test.", []string{"127.0.6.1:7001"}, []string{"SRV _switchboard._tcp.srv.test.", "IP node.srv.test."}},
		{"SRV.test.", []string{"127.0.6.1:7001"}, []string{"SRV _switchboard._tcp.SRV.test.", "IP node.srv.test."}},
		{"srv.test", []string{"127.0.6.1:7001"}, []string{"SRV _switchboard._tcp.srv.test", "IP node.srv.test."}},
		{"plain.test.", []string{"127.0.6.2:7070"}, []string{"SRV _switchboard._tcp.plain.test.", "IP plain.test."}},
		{"plain.test", []string{"127.0.6.2:7070"}, []string{"SRV _switchboard._tcp.plain.test", "IP plain.test"}},
	}
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			cfg := Config{DefaultPort: 7070}
			if err := cfg.validate(); err != nil {
				t.Fatal(err)
			}
			sys := &fakeSystem{}
			got, err := lookupWith(t.Context(), cfg, tt.service, sys)
			if err != nil {
				t.Fatalf("Lookup(%q): %v", tt.service, err)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("Lookup(%q) (-got +want):\n%s", tt.service, diff)
			}
			if diff := cmp.Diff(sys.names(), tt.asked); diff != "" {
				t.Errorf("Lookup(%q) asked the system resolver (-got +want):\n%s", tt.service, diff)
			}
		})
	}

	// The message names the service without its dot.
	cfg := Config{DefaultPort: 7070}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	sys := &fakeSystem{}
	_, err := lookupWith(t.Context(), cfg, "missing.test.", sys)
	if want := "resolve: no address for missing.test via"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Lookup of a missing rooted name: %v, want %q...", err, want)
	}
	if diff := cmp.Diff(sys.names(), []string{"SRV _switchboard._tcp.missing.test.", "IP missing.test."}); diff != "" {
		t.Errorf("Lookup of a missing rooted name asked (-got +want):\n%s", diff)
	}
}
