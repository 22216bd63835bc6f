package node

import (
	"net"
	"testing"
)

func TestAdvertisedHTTP(t *testing.T) {
	for _, tt := range []struct {
		name, explicit, bound, client, want string
	}{
		{"explicit wins", "chat-1.example.net:7171", "0.0.0.0:7071", "10.0.0.1:7070", "chat-1.example.net:7171"},
		{"bound to one address", "", "10.0.0.1:7071", "10.0.0.1:7070", "10.0.0.1:7071"},
		{"all IPv4 interfaces: the client address's host", "", "0.0.0.0:7071", "203.0.113.5:7070", "203.0.113.5:7071"},
		{"all IPv6 interfaces: the client address's host", "", "[::]:7071", "[2001:db8::5]:7070", "[2001:db8::5]:7071"},
		{"all interfaces, a named client host", "", "[::]:7071", "chat-1.example.net:7070", "chat-1.example.net:7071"},
	} {
		bound, err := net.ResolveTCPAddr("tcp", tt.bound)
		if err != nil {
			t.Fatal(err)
		}
		if got := advertisedHTTP(tt.explicit, bound, tt.client); got != tt.want {
			t.Errorf("%s: advertisedHTTP(%q, %s, %q) = %q, want %q", tt.name, tt.explicit, tt.bound, tt.client, got, tt.want)
		}
	}
}
