package rtcfront_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/rtcfront"
)

// TestEscapeSequenceAtTheCutIsKeptWhole: a message over 1,000 bytes with
// an escape sequence (T.140's SGR) begun just before byte 1000 reads in
// the room as it would whole: the sequence is not shown. Before, the
// front cut it in two, and the room showed its end as text ("31mred").
func TestEscapeSequenceAtTheCutIsKeptWhole(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	_, url := startFront(t, c.Nodes[0], nil)
	bob := join(t, c.Nodes[0], "bob", "lobby")
	p, offer := newPeer(t, rtcfront.Protocol, nil)
	p.connect(t, url+"?room=lobby&user=alice", offer)
	p.waitOpen(t)
	a := strings.Repeat("a", 998)
	if err := p.dc.SendText(a + "\x1b[31mred" + "\u009b1m!"); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, settle, func() error {
		if got := bob.text("alice"); got != a+"red!" {
			return fmt.Errorf("bob sees alice type %q, want %q", got[max(0, len(got)-16):], "aaaa…red!")
		}
		return nil
	})
}
