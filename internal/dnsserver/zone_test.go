package dnsserver

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSanitizeLabel(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "node1", "node1"},
		{"upper case", "Node-1", "node-1"},
		{"other characters", "eu/a:node_1", "eu-a-node-1"},
		{"runs of hyphens collapse", "a__b", "a-b"},
		{"no hyphen at the ends", "--a--", "a"},
		{"empty", "", "node"},
		{"nothing usable", "___", "node"},
		{"unicode", "nœud", "n-ud"},
		{"long", strings.Repeat("x", 100), strings.Repeat("x", 63)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sanitizeLabel(tt.in); got != tt.want {
				t.Errorf("sanitizeLabel(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestNodeLabel: a node's label is its ID's alone. An ID that is a DNS
// label in lower case keeps it (the common IDs); any other gets its
// cleaned form and a hash of the ID, so that IDs that clean up alike
// (Web1 and web1, IDs of letters no label holds) get different labels
// whatever other nodes a responder holds.
func TestNodeLabel(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "n1", "n1"},
		{"with a hyphen", "node-1", "node-1"},
		{"region style", "eu-1", "eu-1"},
		{"digits only", "42", "42"},
		{"63 bytes", strings.Repeat("x", 63), strings.Repeat("x", 63)},
		{"upper case", "Web1", "web1-13f03c00"},
		{"underscore", "B_2", "b-2-9ba41414"},
		{"unicode", "nœud", "n-ud-7f243054"},
		{"an address (the default ID)", "127.0.0.2:7070", "127-0-0-2-7070-0ed4c09b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nodeLabel(tt.in); got != tt.want {
				t.Errorf("nodeLabel(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	// IDs that differ only where a label cannot: different labels, each
	// a valid one, at most 63 bytes.
	ids := []string{"web1", "Web1", "WEB1", "web_1", "web-1", "web.1", "日本", "中国", "", "-a-", strings.Repeat("y", 80), strings.Repeat("y", 81), strings.Repeat("z", 53) + "_q"}
	seen := map[string]string{}
	for _, id := range ids {
		l := nodeLabel(id)
		if !isLabel(l) {
			t.Errorf("nodeLabel(%q) = %q, not a DNS label in lower case", id, l)
		}
		if other, ok := seen[l]; ok {
			t.Errorf("nodeLabel gives %q and %q the same label %q", other, id, l)
		}
		seen[l] = id
	}
}

func TestSRVWeight(t *testing.T) {
	tests := []struct {
		name            string
		spare, maxSpare int
		want            uint16
	}{
		{"largest spare", 100, 100, 65535},
		{"half", 50, 100, 32768},
		{"tenth", 10, 100, 6554},
		{"tiny share is still 1", 1, 1000000, 1},
		{"no room", 0, 100, 1},
		{"single seat", 1, 1, 65535},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := srvWeight(tt.spare, tt.maxSpare); got != tt.want {
				t.Errorf("srvWeight(%d, %d) = %d, want %d", tt.spare, tt.maxSpare, got, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	nodes := newDir().nodes
	tests := []struct {
		name    string
		edit    func(*Config)
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{name: "defaults", edit: func(c *Config) { c.Zone = "Chat.Local" }, check: func(t *testing.T, c Config) {
			want := []any{"chat.local.", ":53", 5 * time.Second, 1232, "ns.chat.local."}
			got := []any{c.Zone, c.Addr, c.TTL, c.MaxUDPSize, c.NS}
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("filled config (-got +want):\n%s", diff)
			}
		}},
		{name: "TTL cut to seconds", edit: func(c *Config) { c.TTL = 2500 * time.Millisecond }, check: func(t *testing.T, c Config) {
			if c.TTL != 2*time.Second {
				t.Errorf("TTL %v, want 2s", c.TTL)
			}
		}},
		{name: "no zone", edit: func(c *Config) { c.Zone = "" }, wantErr: "Zone is required"},
		{name: "root zone", edit: func(c *Config) { c.Zone = "." }, wantErr: "Zone is required"},
		{name: "bad zone", edit: func(c *Config) { c.Zone = "a..b" }, wantErr: "not a domain name"},
		{name: "no nodes", edit: func(c *Config) { c.Nodes = nil }, wantErr: "Nodes is required"},
		{name: "no port", edit: func(c *Config) { c.Addr = "127.0.0.1" }, wantErr: "Addr"},
		{name: "bad port", edit: func(c *Config) { c.Addr = "127.0.0.1:99999" }, wantErr: "port"},
		{name: "sub-second TTL", edit: func(c *Config) { c.TTL = time.Millisecond }, wantErr: "TTL"},
		{name: "negative TTL", edit: func(c *Config) { c.TTL = -time.Second }, wantErr: "TTL"},
		{name: "small UDP size", edit: func(c *Config) { c.MaxUDPSize = 100 }, wantErr: "MaxUDPSize"},
		{name: "negative TCP connections", edit: func(c *Config) { c.MaxTCPConns = -1 }, wantErr: "MaxTCPConns"},
		{name: "bad NS", edit: func(c *Config) { c.NS = "a..b" }, wantErr: "NS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Zone: "chat.local", Nodes: nodes}
			tt.edit(&c)
			_, err := New(c)
			if err := c.validate(); (err != nil) != (tt.wantErr != "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("validate: %v, want error containing %q", err, tt.wantErr)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "dnsserver: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}
