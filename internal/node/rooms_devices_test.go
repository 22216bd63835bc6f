package node_test

import (
	"context"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/rtt"
	"github.com/switchboard/switchboard/wire"
)

// TestTwoDevicesTypeOneSeq: two clients of one user, on two nodes, send
// the same seq with other text, as two devices typing at the same moment
// do before either sees the other's chunk. Both chunks are acknowledged,
// and both are stored: the second under the user's next seq. Its session
// gets the room's state, which shows where to count on from. A resend
// from either device is still a resend.
func TestTwoDevicesTypeOneSeq(t *testing.T) {
	const room = "devices"
	c := nodetest.Start(t, 2, nodetest.Options{})
	c.WaitRoomsReady(wait)
	phone := newDevicePeer(t, c.Nodes[0].Addr(), "ann", "phone")
	laptop := newDevicePeer(t, c.Nodes[1].Addr(), "ann", "laptop")
	bob := newPeer(t, c.Nodes[0].Addr(), "bob")
	phone.join(room)
	laptop.join(room)
	bobView := newView(t, bob.join(room))

	phone.send(wire.Message{Op: wire.OpText, Room: room, Seq: 1, T: "p"})
	phone.acked(room, []uint64{1})
	laptop.send(wire.Message{Op: wire.OpText, Room: room, Seq: 1, T: "L"})
	laptop.acked(room, []uint64{1})

	st := laptop.await("the room's state after its chunk moved", func(m wire.Message) bool {
		return m.Op == wire.OpRoom && m.Room == room && m.State != nil && m.State.Seqs["ann"] >= 2
	}).State
	if st.Seqs["ann"] != 2 || st.Live["ann"] != "pL" {
		t.Fatalf("the laptop's state: ann at seq %d typing %q, want seq 2 and %q", st.Seqs["ann"], st.Live["ann"], "pL")
	}
	bobView.follow(bob, room, func(r *rtt.Room) bool { return r.Live("ann") == "pL" })

	// Resends of both chunks are dropped; the phone then types on above
	// what it saw (the laptop's chunk, delivered as seq 2).
	laptop.send(wire.Message{Op: wire.OpText, Room: room, Seq: 1, T: "L"})
	laptop.acked(room, []uint64{1})
	phone.send(wire.Message{Op: wire.OpText, Room: room, Seq: 1, T: "p"})
	phone.acked(room, []uint64{1})
	phone.await("the laptop's chunk", func(m wire.Message) bool {
		return m.Op == wire.OpText && m.From == "ann" && m.Seq == 2 && m.T == "L"
	})
	phone.send(wire.Message{Op: wire.OpText, Room: room, Seq: 3, T: "q"})
	phone.acked(room, []uint64{3})
	bobView.follow(bob, room, func(r *rtt.Room) bool { return r.Live("ann") == "pLq" })

	carol := newPeer(t, c.Nodes[1].Addr(), "carol")
	if st := carol.join(room); st.Seqs["ann"] != 3 || st.Live["ann"] != "pLq" {
		t.Fatalf("a joiner's state: ann at seq %d typing %q, want seq 3 and %q", st.Seqs["ann"], st.Live["ann"], "pLq")
	}
	if got := counter(t, c.Nodes[1], "switchboard_room_moved_chunks_total"); got != 1 {
		t.Errorf("chunks moved on the laptop's node: %v, want 1", got)
	}
}

// TestAttachRefusesBadDevice: a device name too long, or with control
// characters, is refused with bad_request, and the same connection may
// attach with a good one.
func TestAttachRefusesBadDevice(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	conn := dial(t, c.Nodes[0].Addr())
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := conn.Hello(ctx, "test/1", ""); err != nil {
		t.Fatal(err)
	}
	for _, dev := range []string{strings.Repeat("d", node.MaxDevice+1), "a\nb", "a\x7fb"} {
		send(t, conn, wire.Message{Op: wire.OpAttach, User: "ann", Device: dev})
		if m := recvReply(t, conn); m.Op != wire.OpError || m.Code != wire.CodeBadRequest {
			t.Errorf("attach with device %q: %+v, want a bad_request error", dev, m)
		}
	}
	send(t, conn, wire.Message{Op: wire.OpAttach, User: "ann", Device: strings.Repeat("d", node.MaxDevice)})
	if m := recvReply(t, conn); m.Op != wire.OpAttached {
		t.Errorf("attach with a device of %d bytes: %+v, want attached", node.MaxDevice, m)
	}
}
