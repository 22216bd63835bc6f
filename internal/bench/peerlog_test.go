package bench

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/switchboard/switchboard/directory"
)

// The lines a node logs about its peers are read back by node, peer and
// status, the first at or after a time; the rest pass through.
func TestPeerLog(t *testing.T) {
	var out bytes.Buffer
	p := newPeerLog(&out)
	logs := `time=2026-12-01T17:39:38.934Z level=INFO msg="peer changed: its bus connection closed" node=n20 peer=n92 kind=status to=down
time=2026-12-01T17:39:39.100Z level=INFO msg="rooms ready" node=n20 component=rooms streams=8 replicas=3
time=2026-12-01T17:40:01.002Z level=INFO msg="peer changed: its entry says so" node=n20 peer=n101 kind=status from=starting to=up
time=2026-12-01T17:40:05.500Z level=INFO msg="peer changed" node=n21 peer=n101 kind=status to=down
time=2026-12-01T17:40:09.250Z level=INFO msg="peer changed: its entry says so" node=n21 peer=n101 kind=status from=down to=up
`
	// Two writes, as two nodes' pipes would hand them over.
	half := bytes.Index([]byte(logs), []byte("time=2026-12-01T17:40:05"))
	for _, chunk := range []string{logs[:half], logs[half:]} {
		if n, err := p.Write([]byte(chunk)); err != nil || n != len(chunk) {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if out.String() != logs {
		t.Errorf("passed on %q, want the logs unchanged", out.String())
	}
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		node, peer string
		status     directory.Status
		since      time.Time
		want       time.Time
		ok         bool
	}{
		{"n20", "n92", directory.Down, time.Time{}, at("2026-12-01T17:39:38.934Z"), true},
		{"n20", "n101", directory.Up, time.Time{}, at("2026-12-01T17:40:01.002Z"), true},
		{"n21", "n101", directory.Down, time.Time{}, at("2026-12-01T17:40:05.500Z"), true},
		{"n21", "n101", directory.Up, at("2026-12-01T17:40:09Z"), at("2026-12-01T17:40:09.250Z"), true},
		{"n21", "n101", directory.Up, at("2026-12-01T17:40:10Z"), time.Time{}, false},
		{"n20", "n92", directory.Up, time.Time{}, time.Time{}, false},
	}
	for _, tt := range tests {
		got, ok := p.first(tt.node, tt.peer, tt.status, tt.since)
		if ok != tt.ok || !got.Equal(tt.want) {
			t.Errorf("first(%s, %s, %s, %v) = %v, %v; want %v, %v", tt.node, tt.peer, tt.status, tt.since, got, ok, tt.want, tt.ok)
		}
	}
}

// Each node's writer keeps a line cut by a pipe's read until its end
// comes, while another node's lines arrive in between.
func TestPeerLogCutLines(t *testing.T) {
	var out bytes.Buffer
	p := newPeerLog(&out)
	a, b := p.node(), p.node()
	lineA := `time=2026-12-01T18:00:00.100Z level=INFO msg="peer changed: its entry says so" node=n1 peer=n9 kind=added from="" to=up` + "\n"
	lineB := `time=2026-12-01T18:00:00.200Z level=INFO msg="peer changed" node=n2 peer=n8 kind=status to=down` + "\n"
	cut := 40
	for _, w := range []struct {
		to   io.Writer
		data string
	}{{a, lineA[:cut]}, {b, lineB}, {a, lineA[cut:]}} {
		if _, err := w.to.Write([]byte(w.data)); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := p.first("n1", "n9", directory.Up, time.Time{}); !ok {
		t.Error("the line cut in two was not read")
	}
	if _, ok := p.first("n2", "n8", directory.Down, time.Time{}); !ok {
		t.Error("the other node's line was not read")
	}
	if want := lineB + lineA; out.String() != want {
		t.Errorf("passed on %q, want %q", out.String(), want)
	}
}
