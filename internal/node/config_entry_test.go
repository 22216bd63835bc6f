package node_test

import (
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
)

// A node whose own directory entry its peers would not take (a field
// past the directory's 300 bytes, or an entry past the largest a peer
// decodes) is refused at New: it would otherwise start, show itself up,
// and never be listed by a peer. The longest fields that fit are taken.
func TestConfigRefusesAnEntryPeersWouldNotTake(t *testing.T) {
	const field = 300 // directory.DefaultLimits().MaxField
	// Each byte of "<" is six in JSON ("\u003c"): five such fields of
	// the most bytes allowed make an entry past 8 KiB.
	escaped := strings.Repeat("<", field-len(":7070")) + ":7070"
	for _, tt := range []struct {
		name string
		edit func(*node.Config)
		want string // "" for valid
	}{
		{"an id of 301 bytes", func(c *node.Config) { c.ID = strings.Repeat("n", field+1) }, `id "nnnn`},
		{"a group of 301 bytes", func(c *node.Config) { c.Group = strings.Repeat("g", field+1) }, `group "gggg`},
		{"a version of 301 bytes", func(c *node.Config) { c.Version = strings.Repeat("v", field+1) }, `version "vvvv`},
		{"an advertised address of 301 bytes", func(c *node.Config) { c.Advertise = strings.Repeat("h", field+1-len(":7070")) + ":7070" }, `advertise "hhhh`},
		{"every field escaped at the most", func(c *node.Config) {
			c.ID, c.Group, c.Version = strings.Repeat("<", field), strings.Repeat("<", field), strings.Repeat("<", field)
			c.Advertise, c.AdvertiseHTTP = escaped, escaped
		}, "directory entry (id, group, version, advertised addresses) takes up to"},
		{"every field of 300 bytes", func(c *node.Config) {
			c.ID, c.Group, c.Version = strings.Repeat("n", field), strings.Repeat("g", field), strings.Repeat("v", field)
		}, ""},
	} {
		cfg := nodetest.Config("entry.test", 0)
		cfg.Cluster = "" // alone: only the settings under test
		tt.edit(&cfg)
		_, err := node.New(cfg)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: New: %v, want it taken", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: New: %v, want an error about %q", tt.name, err, tt.want)
		}
	}
}
