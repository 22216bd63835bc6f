package client

import (
	"crypto/tls"
	"testing"
)

// The service a session's directories must name: WithServiceName's, else
// the name its TLS nodes prove, else none (a target's name alone is no
// service name).
func TestExpectedService(t *testing.T) {
	for _, tt := range []struct {
		name string
		tls  *tls.Config
		want string
	}{
		{"", nil, ""},
		{"chat.example", nil, "chat.example"},
		{"chat.example.", nil, "chat.example"},
		{"", &tls.Config{ServerName: "tls.example."}, "tls.example"},
		{"chat.example", &tls.Config{ServerName: "tls.example"}, "chat.example"},
	} {
		if got := expectedService(tt.name, tt.tls); got != tt.want {
			t.Errorf("expectedService(%q, %v) = %q, want %q", tt.name, tt.tls, got, tt.want)
		}
	}
}
