package node

import (
	"testing"
	"time"
)

func TestReplicaStartWant(t *testing.T) {
	embedded := replicaStart{embedded: true, configured: 1}
	tests := []struct {
		name       string
		start      replicaStart
		up, seen   int
		waited     time.Duration
		want       int
		wantAwaits bool
	}{
		{name: "fixed wins", start: replicaStart{fixed: 5, embedded: true, configured: 3}, up: 2, seen: 3, want: 5},
		{name: "fixed 1 in a cluster", start: replicaStart{fixed: 1, embedded: true}, up: 3, seen: 3, want: 1},
		{name: "alone", start: replicaStart{configured: 1}, up: 1, seen: 1, want: 1},
		{name: "external bus of 3 servers", start: replicaStart{}, up: 3, seen: 3, want: 3},
		{name: "external bus of 2 servers never waits", start: replicaStart{}, up: 2, seen: 2, want: 2},
		{name: "two nodes, nothing says more", start: embedded, up: 2, seen: 2, want: 2},
		{name: "a third seen by its route, not yet in the directory", start: embedded, up: 2, seen: 3, want: 3, wantAwaits: true},
		{name: "a third in the directory", start: embedded, up: 3, seen: 3, want: 3, wantAwaits: true},
		{name: "configured for three, two seen", start: replicaStart{embedded: true, configured: 3}, up: 2, seen: 2, want: 3, wantAwaits: true},
		{name: "configured for five, one seen", start: replicaStart{embedded: true, configured: 5}, up: 1, seen: 1, waited: time.Second, want: 3, wantAwaits: true},
		{name: "the wait ran out: as many as are up", start: replicaStart{embedded: true, configured: 3}, up: 2, seen: 2, waited: fullReplicasWait, want: 2},
		{name: "the wait ran out with three up", start: embedded, up: 3, seen: 3, waited: time.Minute, want: 3},
		{name: "the directory lags the routes", start: embedded, up: 1, seen: 2, want: 2},
		{name: "nothing heard yet", start: embedded, up: 0, seen: 1, want: 1},
		{name: "five up", start: embedded, up: 5, seen: 5, want: 3, wantAwaits: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, awaits := tt.start.want(tt.up, tt.seen, tt.waited)
			if got != tt.want || awaits != tt.wantAwaits {
				t.Errorf("want(%d, %d, %v) = %d, %v; want %d, %v", tt.up, tt.seen, tt.waited, got, awaits, tt.want, tt.wantAwaits)
			}
		})
	}
}

func TestConfiguredNodes(t *testing.T) {
	tests := []struct {
		name    string
		cluster string
		join    []string
		bus     string
		bound   string
		want    int
	}{
		{name: "no cluster", want: 1},
		{name: "external bus", cluster: "10.0.0.1:7072", join: []string{"10.0.0.2:7072", "10.0.0.3:7072"}, bus: "nats://x:4222", want: 1},
		{name: "a seed", cluster: "10.0.0.1:7072", want: 1},
		{name: "joins the seed", cluster: "10.0.0.2:7072", join: []string{"10.0.0.1:7072"}, want: 2},
		{name: "names the other two", cluster: "10.0.0.1:7072", join: []string{"10.0.0.2:7072", "10.0.0.3:7072"}, want: 3},
		{name: "names all three, itself too", cluster: "10.0.0.2:7072", join: []string{"10.0.0.1:7072", "10.0.0.2:7072", "10.0.0.3:7072"}, want: 3},
		{name: "itself by its bound address", cluster: "0.0.0.0:7072", bound: "10.0.0.2:7072", join: []string{"10.0.0.1:7072", "10.0.0.2:7072", "10.0.0.3:7072"}, want: 3},
		{name: "duplicates and blanks count once", cluster: "10.0.0.1:7072", join: []string{" 10.0.0.2:7072", "10.0.0.2:7072", "", "N3.example:7072", "n3.example:7072"}, want: 3},
		{name: "IPv6 spelled two ways", cluster: "[::1]:7072", join: []string{"[0:0:0:0:0:0:0:1]:7072", "[::2]:7072"}, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Cluster: tt.cluster, Join: tt.join, Bus: tt.bus}
			if got := configuredNodes(cfg, tt.bound); got != tt.want {
				t.Errorf("configuredNodes(cluster %q, join %q, bound %q) = %d, want %d", tt.cluster, tt.join, tt.bound, got, tt.want)
			}
		})
	}
}
