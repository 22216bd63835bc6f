package bus

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// The monitoring endpoint is off unless asked for; asked for, it serves
// nats-server's varz on the port it bound.
func TestMonitor(t *testing.T) {
	for _, tt := range []struct {
		name    string
		monitor string
	}{
		{name: "off", monitor: ""},
		{name: "on", monitor: "127.0.0.1:0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Open(context.Background(), Config{Name: "m1", Monitor: tt.monitor})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			addr := b.MonitorAddr()
			if tt.monitor == "" {
				if addr != nil {
					t.Fatalf("MonitorAddr = %v with Monitor unset, want nil", addr)
				}
				return
			}
			if addr == nil || addr.Port == 0 {
				t.Fatalf("MonitorAddr = %v, want a bound address", addr)
			}
			resp, err := http.Get("http://" + addr.String() + "/varz")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var varz struct {
				ServerName string `json:"server_name"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&varz); err != nil || resp.StatusCode != http.StatusOK || varz.ServerName != "m1" {
				t.Errorf("GET /varz = %d, server_name %q (%v); want 200 from m1", resp.StatusCode, varz.ServerName, err)
			}
		})
	}
}

func TestMonitorOptions(t *testing.T) {
	tests := []struct {
		name     string
		monitor  string
		wantHost string
		wantPort int
		wantErr  bool
	}{
		{name: "off", monitor: "", wantHost: "", wantPort: 0},
		{name: "fixed port", monitor: "127.0.0.1:8222", wantHost: "127.0.0.1", wantPort: 8222},
		{name: "free port", monitor: "127.0.0.1:0", wantHost: "127.0.0.1", wantPort: server.RANDOM_PORT},
		{name: "every interface", monitor: ":8222", wantHost: "0.0.0.0", wantPort: 8222},
		{name: "no port", monitor: "127.0.0.1", wantErr: true},
		{name: "bad port", monitor: "127.0.0.1:99999", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, _, err := serverOptions(Config{Name: "m1", Monitor: tt.monitor})
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Monitor %q accepted, want an error", tt.monitor)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if opts.HTTPHost != tt.wantHost || opts.HTTPPort != tt.wantPort {
				t.Errorf("Monitor %q gives %s:%d, want %s:%d", tt.monitor, opts.HTTPHost, opts.HTTPPort, tt.wantHost, tt.wantPort)
			}
		})
	}
	if _, err := Open(context.Background(), Config{Name: "m1", External: "nats://127.0.0.1:4222", Monitor: "127.0.0.1:0"}); err == nil {
		t.Error("Monitor accepted with External, want an error")
	}
}
