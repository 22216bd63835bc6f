package node_test

import (
	"testing"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
)

// A re-join's state holds every chunk the node acked to the session
// before it: the writer acks a chunk once stored, and the room applies it
// a moment later, from the stream. Answered from what the room had
// applied, the state could lack the chunk acked a moment ago, and a
// client that shows its own line from the state (chat and the web page
// do after another device's text) showed it without that chunk. Each
// round types a chunk, awaits its ack and joins again at once.
func TestRejoinStateHoldsWhatWasAcked(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	var peers []*peer
	for _, user := range []string{"ann", "bob", "cal"} {
		p := newPeer(t, c.Nodes[0].Addr(), user)
		p.join("lobby")
		peers = append(peers, p)
	}
	for round := range 3 * (node.RoomOpBurst - 2) {
		p := peers[round%len(peers)]
		seqs := p.typeText("lobby", "x")
		p.acked("lobby", seqs)
		st := p.rejoin("lobby")
		if got := st.Seqs[p.user]; got < seqs[0] {
			t.Fatalf("round %d: the state after the ack of %s's seq %d holds their text up to seq %d", round, p.user, seqs[0], got)
		}
	}
}
