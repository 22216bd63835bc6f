package room_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/room"
	"github.com/switchboard/switchboard/wire"
)

// A stored chunk with a seq past 2^53-1 (nodes refuse one from a client;
// a faulty node may store it anyway) is ignored. Before, its user's seq
// became 2^64-1 on every node and each later chunk of the user was taken
// for a duplicate.
func TestChunkPastMaxSeqIsIgnored(t *testing.T) {
	r, err := room.New("r", room.DefaultConfig("n1", 1))
	if err != nil {
		t.Fatal(err)
	}
	r.Apply(1, room.Record{Op: room.OpJoin, User: "u", Key: "n1/1", Node: "n1", Inc: 1})
	r.Apply(2, room.Record{Op: room.OpText, User: "u", Key: "n2/9", Seq: math.MaxUint64, T: "x"})
	r.Apply(3, room.Record{Op: room.OpBatch, Recs: []room.Record{{Op: room.OpText, User: "u", Key: "n2/9", Seq: 1 << 53, T: "y"}}})
	if res := r.Apply(4, room.Record{Op: room.OpText, User: "u", Key: "n1/1", Seq: 1, T: "hello", Dev: "d"}); res.Duplicates != 0 || r.Seq("u") != 1 {
		t.Fatalf("after chunks past 2^53-1: u's seq %d, %d duplicates; want 1, 0", r.Seq("u"), res.Duplicates)
	}
}

// A snapshot whose seq, or a sender's, is past 2^53-1 is damaged: the
// node rebuilds the room from its stream. Before, a snapshot at seq
// 2^64-1 had every later record skipped.
func TestSnapshotPastMaxSeqIsDamaged(t *testing.T) {
	for _, data := range []string{
		fmt.Sprintf(`{"v":2,"seq":%d,"lines":[],"senders":{},"members":{}}`, uint64(math.MaxUint64)),
		fmt.Sprintf(`{"v":2,"seq":5,"lines":[],"senders":{"u":{"seq":%d}},"members":{}}`, uint64(1<<53)),
		fmt.Sprintf(`{"seq":%d,"state":{},"members":{}}`, uint64(1<<53)),
	} {
		if _, err := room.Restore("r", []byte(data), room.DefaultConfig("n1", 1)); !errors.Is(err, room.ErrSnapshot) {
			t.Errorf("Restore(%s): %v, want ErrSnapshot", data, err)
		}
	}
}

// Live text under names the room does not list, however many, keeps at
// most MaxSenders of them waiting. Before, each made-up name stayed until
// a record of its own came: live text from a faulty node grew the room
// on every node without bound.
func TestLiveOfUnknownSendersIsBounded(t *testing.T) {
	cfg := room.DefaultConfig("n1", 1)
	r, err := room.New("r", cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 * cfg.MaxSenders {
		r.ApplyLive(room.Record{Op: room.OpText, User: fmt.Sprint("ghost", i), Key: "n9/1", Seq: 1, T: "x"})
	}
	if w := r.Waiting(); w > cfg.MaxSenders {
		t.Fatalf("%d live chunks wait from senders the room does not list; want at most %d", w, cfg.MaxSenders)
	}
}

// Text longer than any node's max_chunk, which no node takes from a
// client, stored or shown live by a faulty node all the same: neither
// applied nor delivered (before, every member got it in a line past the
// protocol's, and the Go client dropped its connection).
func TestChunksNoNodeTakesAreIgnored(t *testing.T) {
	var delivered []string
	cfg := room.DefaultConfig("n1", 1)
	cfg.Sink = room.SinkFunc(func(key string, line []byte) { delivered = append(delivered, string(line)) })
	r, err := room.New("r", cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.Apply(1, room.Record{Op: room.OpJoin, User: "u", Key: "n1/1", Node: "n1", Inc: 1})
	r.Register("n1/1", "u")
	if _, err := r.Activate("n1/1"); err != nil {
		t.Fatal(err)
	}
	delivered = nil
	big := strings.Repeat("x", wire.MaxChunkLimit+1)
	r.Apply(2, room.Record{Op: room.OpText, User: "bob", Key: "n2/9", Seq: 1, T: big})
	r.Apply(3, room.Record{Op: room.OpBatch, Recs: []room.Record{{Op: room.OpText, User: "bob", Key: "n2/9", Seq: 1, T: big}}})
	if shown := r.ApplyLive(room.Record{Op: room.OpText, User: "carl", Key: "n2/8", Seq: 1, T: big}); shown != 0 {
		t.Errorf("a live chunk of %d bytes shown", len(big))
	}
	for _, line := range delivered {
		t.Errorf("delivered %.80q (%d bytes)", line, len(line))
	}
	if seq := r.Seq("bob"); seq != 0 {
		t.Errorf("bob's seq %d after chunks no node takes, want 0", seq)
	}
}
