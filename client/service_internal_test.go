package client

import "testing"

// The service a session's directories must name: WithServiceName's,
// without a final dot, else none (a target's name, and the TLS name
// taken from it, are no service name).
func TestExpectedService(t *testing.T) {
	for _, tt := range []struct{ name, want string }{
		{"", ""},
		{"chat.example", "chat.example"},
		{"chat.example.", "chat.example"},
	} {
		if got := expectedService(tt.name); got != tt.want {
			t.Errorf("expectedService(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}
