package room_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/room"
)

// FuzzRecordScript drives a Room with a script of records and calls in
// any order: joins, leaves, texts, batches and live text with odd fields
// (empty and unknown keys, users and nodes; seqs at 0, the jump bound and
// past 2^53 and 2^64-1; backspaces, line breaks, text that is not UTF-8),
// local sessions registered, activated, resynced and detached, stream
// seqs that repeat or skip, reconciles, state lines and snapshots. Any
// node of the cluster writes a room's stream, so a record must never
// panic the node that applies it; a snapshot taken at any point must
// restore. Each byte of the script chooses the next step or a value.
func FuzzRecordScript(f *testing.F) {
	f.Add([]byte{0, 1, 1, 1, 1, 2, 1, 1, 2, 1, 11, 3, 1, 1, 10})
	f.Add([]byte{5, 0, 1, 6, 0, 0, 0, 0, 0, 0, 2, 0, 0, 7, 3, 1, 9, 0, 12, 1, 1, 10, 11})
	f.Add([]byte{4, 2, 2, 6, 5, 3, 3, 2, 2, 2, 7, 6, 1, 8, 0, 10, 10, 13, 9, 11})
	f.Fuzz(func(t *testing.T, script []byte) {
		users := []string{"ann", "bob", "", strings.Repeat("u", 300), "a\x00b"}
		keys := []string{"n1/1", "n2/1", "n1/2", "", "n9/x"}
		nodes := []string{"n1", "n2", "", "n3"}
		incs := []uint64{1, 0, 2, math.MaxUint64}
		seqs := []uint64{1, 2, 3, 0, 10_000, 10_001, 1<<53 - 1, 1 << 53, math.MaxUint64}
		texts := []string{"a", "bc", "", "\b", "\b\b\b", "\r\n", "\u2028x", "\xff\xfe", strings.Repeat("é", 3000), "\u0301\u0301"}
		devs := []string{"", "d1", "d2"}
		ops := []string{room.OpJoin, room.OpLeave, room.OpText, "bogus", ""}
		pos := 0
		next := func(n int) int {
			if pos >= len(script) {
				return 0
			}
			b := script[pos]
			pos++
			return int(b) % n
		}
		pick := func(s []string) string { return s[next(len(s))] }
		text := func() room.Record {
			return room.Record{Op: room.OpText, User: pick(users), Key: pick(keys), Seq: seqs[next(len(seqs))], T: pick(texts), Dev: pick(devs)}
		}
		cfg := room.DefaultConfig("n1", 1)
		cfg.MaxUsers, cfg.MaxUserSessions, cfg.MaxSenders, cfg.MaxLines = 3, 2, 4, 5
		r, err := room.New("r", cfg)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Unix(1e9, 0)
		var seq uint64
		for pos < len(script) && pos < 4000 {
			switch next(14) {
			case 0, 1, 2: // the stream's next record, or one repeated or skipped to
				switch next(4) {
				case 0:
					seq++
				case 1: // again
				case 2:
					seq += 1000
				case 3:
					seq = max(seq, 1) - 1
				}
				var rec room.Record
				switch next(4) {
				case 0:
					rec = room.Record{Op: room.OpJoin, User: pick(users), Key: pick(keys), Node: pick(nodes), Inc: incs[next(len(incs))]}
				case 1:
					rec = room.Record{Op: room.OpLeave, Keys: []string{pick(keys), pick(keys)}[:1+next(2)]}
				case 2:
					rec = text()
				case 3:
					rec = room.Record{Op: room.OpBatch, Recs: []room.Record{text(), {Op: pick(ops), Key: pick(keys), User: pick(users)}, text()}[:1+next(3)]}
				}
				r.Apply(seq, rec)
			case 3:
				r.ApplyLive(text())
			case 4:
				r.Register(pick(keys), pick(users))
			case 5:
				_, _ = r.Activate(pick(keys))
			case 6:
				_, _ = r.Resync(pick(keys))
			case 7:
				r.MarkLeaving(pick(keys))
			case 8:
				r.Detach(pick(keys))
			case 9:
				now = now.Add(time.Duration(next(4)) * time.Second)
				v := room.NewView([]directory.Node{{ID: "n1", Status: directory.Up}, {ID: pick(nodes), Status: directory.Down}}, map[string]uint64{pick(nodes): incs[next(len(incs))]})
				for _, rec := range r.Reconcile(now, v) {
					if _, err := json.Marshal(rec); err != nil {
						t.Fatalf("Reconcile asked to store %+v, which does not encode: %v", rec, err)
					}
				}
			case 10:
				_, _ = r.StateLine()
			case 11, 12:
				data, err := r.Snapshot()
				if err != nil {
					t.Fatalf("Snapshot: %v", err)
				}
				back, err := room.Restore("r", data, cfg)
				if err != nil {
					t.Fatalf("a snapshot does not restore: %v\n%s", err, data)
				}
				if back.Applied() != r.Applied() {
					t.Fatalf("restored at %d, taken at %d", back.Applied(), r.Applied())
				}
			case 13:
				_ = r.Waiting()
				_ = r.Users()
				_ = r.OwnMembers()
				_ = r.Text()
			}
		}
	})
}
