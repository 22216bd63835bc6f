package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A component that names itself on a logger its caller already named
// (the node's "dns" logger handed to the DNS server, which adds
// "dnsserver") writes each key once, in both formats.
func TestLogKeysAreUnique(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			lf := logFlags{level: "info", format: format}
			log, err := lf.logger("serve", &buf)
			if err != nil {
				t.Fatal(err)
			}
			node := log.With("node", "n1")
			dns := node.With("component", "dns")
			dns.With("component", "dnsserver", "zone", "chat.test").Info("listening", "addr", "127.0.0.1:53", "zone", "chat.test.")
			node.WithGroup("req").Info("grouped", "id", 7)
			dns.Debug("not at info")
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if len(lines) != 2 {
				t.Fatalf("%d lines, want 2:\n%s", len(lines), buf.String())
			}
			if format == "text" {
				if strings.Count(lines[0], "component=") != 1 || strings.Count(lines[0], "zone=") != 1 || !strings.Contains(lines[0], "component=dnsserver") || !strings.Contains(lines[0], "zone=chat.test.") {
					t.Errorf("record %q", lines[0])
				}
				if !strings.Contains(lines[1], "node=n1 req.id=7") {
					t.Errorf("grouped record %q", lines[1])
				}
				return
			}
			// Decoding into a map keeps the last of a duplicated key, so
			// count the keys with a token decoder instead.
			keys := map[string]int{}
			dec := json.NewDecoder(strings.NewReader(lines[0]))
			dec.Token() // {
			for dec.More() {
				k, _ := dec.Token()
				keys[k.(string)]++
				var v any
				if err := dec.Decode(&v); err != nil {
					t.Fatal(err)
				}
			}
			want := map[string]int{"time": 1, "level": 1, "msg": 1, "node": 1, "component": 1, "zone": 1, "addr": 1}
			if diff := cmp.Diff(keys, want); diff != "" {
				t.Errorf("keys (-got +want):\n%s\n%s", diff, lines[0])
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(lines[1]), &rec); err != nil || rec["node"] != "n1" || rec["req"].(map[string]any)["id"] != 7.0 {
				t.Errorf("grouped record %s: %v", lines[1], err)
			}
		})
	}
}

func TestLogFlagErrors(t *testing.T) {
	for _, lf := range []logFlags{{level: "loud", format: "text"}, {level: "info", format: "xml"}} {
		if _, err := lf.logger("serve", &bytes.Buffer{}); err == nil || exitCode(err) != exitUsage {
			t.Errorf("%+v: %v, want a usage error", lf, err)
		}
	}
	var _ slog.Handler = &uniqueKeys{}
}
