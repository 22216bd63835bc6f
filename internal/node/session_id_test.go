package node_test

import (
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
)

// n3 crashes with alice in lobby and restarts on its data a whole second
// later: the rooms still hold alice's membership from its last life, and
// bob, its first session of the new one, must get an ID of his own.
// Before, session IDs held the incarnation modulo 1e6, the same for two
// lives a whole number of milliseconds apart: bob got alice's old ID
// and room key, and his join was taken for hers, retried (its state
// listed alice, not bob).
//
// The nodes share an external NATS, which keeps the rooms: n3's second
// life is then up at once, not after it has caught up with the embedded
// cluster's streams, which is not what this test is about.
func TestSessionIDsDifferAcrossLives(t *testing.T) {
	dir := t.TempDir()
	ns := externalNATS(t, t.TempDir())
	asN3 := onBus(ns.ClientURL(), func(cfg *node.Config) { cfg.ID, cfg.DataDir = "n3", dir })
	c := nodetest.Start(t, 2, nodetest.Options{Configure: onBus(ns.ClientURL(), nil)})
	t0 := time.Now()
	restore := node.SetIncarnationClock(func() time.Time { return t0 })
	n3 := c.Add(asN3)
	restore()
	c.WaitAllUp(settle)
	c.WaitRoomsReady(settle)
	alice := newPeer(t, n3.Addr(), "alice")
	alice.join("lobby")
	n3.Halt()
	restore = node.SetIncarnationClock(func() time.Time { return t0.Add(time.Second) })
	n3b := c.Add(asN3)
	restore()
	c.WaitAllUp(settle)
	c.WaitRoomsReady(settle)
	bob := newPeer(t, n3b.Addr(), "bob")
	if bob.session == alice.session {
		t.Errorf("bob's session in n3's second life is %s, alice's in its first", bob.session)
	}
	if st := bob.rejoin("lobby"); !slices.Contains(st.Users, "bob") {
		t.Errorf("bob joined lobby and its state lists %v, without bob", st.Users)
	}
}
