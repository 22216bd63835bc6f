package room_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/switchboard/switchboard/room"
)

// FuzzRestore feeds Restore arbitrary bytes. It must never panic; it
// fails only with ErrSnapshot; a snapshot it accepts writes out as version
// 2, restores again, and writes out the same bytes.
func FuzzRestore(f *testing.F) {
	seeds := []string{
		v1,
		`{"seq":0,"state":{},"members":{}}`,
		`{"seq":3,"state":{"Lines":null,"Live":null},"members":null}`,
		`{"v":2,"seq":8,"lines":[{"from":"bob","text":"line one"}],"senders":{"bob":{"live":"next","seq":3,"cr":true},"zed":{}},"members":{"n2/1":{"user":"bob","node":"n2","inc":20}}}`,
		`{"v":2}`,
		`{"v":2,"seq":9,"lines":[],"senders":{"ann":{"live":"pLq","seq":4,"at":9,"recent":[{"seq":1,"sent":1,"dev":7},{"seq":2,"sent":1,"dev":8},{"seq":4,"sent":4,"dev":7}]}},"members":{"n1/1":{"user":"ann","node":"n1","inc":1}}}`,
		`{"v":2,"seq":9,"senders":{"ann":{"seq":4,"recent":[{"seq":5,"sent":1}]}},"members":{"n1/1":{"user":"ann","node":"n1","inc":1}}}`,
		`{"v":2,"seq":9,"senders":{"ann":{"live":"ab","seq":4,"floor":1,"devices":[{"dev":7,"sent":2},{"dev":8,"sent":4}]}},"members":{"n1/1":{"user":"ann","node":"n1","inc":1}}}`,
		`{"v":2,"seq":9,"senders":{"ann":{"live":"ab","seq":4,"floor":1,"left":[{"dev":7,"sent":2},{"dev":8,"sent":4}]}},"members":{}}`,
		`{"v":3,"seq":1}`,
		`{"v":-1}`,
		`{"v":"2"}`,
		`{"v":2,"lines":[{"from":"a","text":"\ud800"}]}`,
		`{"v":2,"senders":{"a":{"live":"\u0008"}}}`,
		`{"seq":1,"state":{"Lines":[{"From":"a","Text":"x"}]},"members":{"k":{"user":"u"}}}`,
		`null`,
		``,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := room.DefaultConfig("n1", 1)
		r, err := room.Restore("r", data, cfg)
		if err != nil {
			if !errors.Is(err, room.ErrSnapshot) {
				t.Fatalf("Restore: %v, not ErrSnapshot", err)
			}
			return
		}
		out, err := r.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		again, err := room.Restore("r", out, cfg)
		if err != nil {
			t.Fatalf("Restore of its own snapshot %s: %v", out, err)
		}
		out2, err := again.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("snapshot changed on a round trip:\n%s\n%s", out, out2)
		}
		if seq, err := room.SnapshotSeq(out); err != nil || seq != r.Applied() {
			t.Fatalf("SnapshotSeq = %d, %v; want %d", seq, err, r.Applied())
		}
		if _, err := r.StateLine(); err != nil {
			t.Fatal(err)
		}
	})
}
