package room_test

import (
	"fmt"
	"testing"

	"github.com/switchboard/switchboard/room"
)

// BenchmarkApplyManySenders applies one text record to a room of users
// users who all have typed: more senders in the room than MaxSenders at
// its default unless the room raises it.
func BenchmarkApplyManySenders(b *testing.B) {
	for _, users := range []int{100, 2000} {
		b.Run(fmt.Sprint(users), func(b *testing.B) {
			cfg := room.DefaultConfig("n1", 1)
			cfg.MaxUsers = users
			r, err := room.New("r", cfg)
			if err != nil {
				b.Fatal(err)
			}
			seq := uint64(0)
			for i := range users {
				u := fmt.Sprintf("u%d", i)
				seq++
				r.Apply(seq, room.Record{Op: room.OpJoin, User: u, Key: "n2/" + u, Node: "n2", Inc: 1})
				seq++
				r.Apply(seq, room.Record{Op: room.OpText, User: u, Key: "n2/" + u, Seq: 1, T: "x"})
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				seq++
				r.Apply(seq, room.Record{Op: room.OpText, User: "u0", Key: "n2/u0", Seq: uint64(i + 2), T: "x"})
			}
		})
	}
}

// BenchmarkSnapshotCrowded encodes the snapshot of a room whose 985
// departed senders left 4 KiB unfinished lines of quotes: whole, and cut
// to the embedded bus's and an external bus's default limits.
func BenchmarkSnapshotCrowded(b *testing.B) {
	r := crowdedRoom(b, 985)
	for _, limit := range []int{0, embeddedLimit, externalLimit} {
		b.Run(fmt.Sprint(limit), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.SnapshotWithin(limit); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkApplyText applies one text chunk after another of one user in
// a room of ten, from a client that names its device and from one that
// does not: the cost of keeping the user's recent chunks (devices.go).
func BenchmarkApplyText(b *testing.B) {
	for _, dev := range []string{"", "K7QJ2M4XBV6ZPN3RWHTD5CYE8A"} {
		name := "device"
		if dev == "" {
			name = "none"
		}
		b.Run(name, func(b *testing.B) {
			r, err := room.New("r", room.DefaultConfig("n1", 1))
			if err != nil {
				b.Fatal(err)
			}
			seq := uint64(0)
			for i := range 10 {
				u := fmt.Sprintf("u%d", i)
				seq++
				r.Apply(seq, room.Record{Op: room.OpJoin, User: u, Key: "n2/" + u, Node: "n2", Inc: 1})
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				seq++
				r.Apply(seq, room.Record{Op: room.OpText, User: "u0", Key: "n2/u0", Seq: uint64(i + 1), T: "x", Dev: dev})
			}
		})
	}
}
