package directory_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/switchboard/switchboard/directory"
)

// FuzzApply drives a table with random updates and ticks, read from the
// fuzzer's bytes five at a time, and checks it against a plain model of
// what it must hold:
//
//   - per id, the entry with the largest (inc, seq) applied since the id
//     was last removed (the first of equal pairs), with its status turned
//     down only by a Tick that said so;
//   - Apply reports Added, Stale, Refreshed or StatusChanged as the model
//     predicts, a Refreshed with Content exactly when a field other than
//     the status changed;
//   - Tick marks down exactly the non-self, non-down peers silent for
//     DownAfter, removes only down peers silent for RemoveAfter, never
//     touches self, and sorts its changes by ID;
//   - snapshots hold one record per id, sorted, with AgeMS >= 0.
func FuzzApply(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 1, 0x11, 1, 0, 3, 0, 0, 0, 70})
	f.Add([]byte{
		0, 0, 0x11, 1, 0, // self up
		1, 1, 0x12, 1, 0, // b up
		2, 2, 0x01, 0, 10, // c starting
		3, 0, 0, 0, 40, // tick
		0, 1, 0x13, 4, 5, // b down (announced)
		3, 0, 0, 0, 200, // tick
		3, 0, 0, 0, 255, // tick
	})
	f.Fuzz(func(t *testing.T, ops []byte) {
		const self = "a"
		ids := []string{"a", "b", "c", "d"}
		statuses := []directory.Status{directory.Starting, directory.Up, directory.Draining, directory.Full, directory.Down}
		to := directory.Timeouts{DownAfter: 300 * time.Millisecond, RemoveAfter: time.Second}

		type model struct {
			e              directory.Entry
			heard, changed time.Time
		}
		want := map[string]*model{}
		tab := directory.NewTable(self, to)
		now := t0

		if len(ops) > 5*200 {
			ops = ops[:5*200] // longer runs find nothing new, only slower
		}
		for len(ops) >= 5 {
			op, idb, pair, st, dt := ops[0], ops[1], ops[2], ops[3], ops[4]
			ops = ops[5:]
			now = now.Add(time.Duration(dt) * 10 * time.Millisecond)

			if op%4 == 3 {
				got := tab.Tick(now)
				if !slices.IsSortedFunc(got, func(a, b directory.Change) int { return strings.Compare(a.ID, b.ID) }) {
					t.Fatalf("Tick changes not sorted: %+v", got)
				}
				changed := map[string]directory.Change{}
				for _, c := range got {
					if _, dup := changed[c.ID]; dup {
						t.Fatalf("Tick reported %q twice: %+v", c.ID, got)
					}
					changed[c.ID] = c
				}
				for id, m := range want {
					silent := now.Sub(m.heard)
					c, ok := changed[id]
					delete(changed, id)
					switch {
					case id == self:
						if ok {
							t.Fatalf("Tick changed self: %+v", c)
						}
					case m.e.Status != directory.Down && silent >= to.DownAfter:
						wc := directory.Change{ID: id, Kind: directory.StatusChanged, From: m.e.Status, To: directory.Down}
						if c != wc {
							t.Fatalf("peer %q silent %v: Tick change %+v, want %+v", id, silent, c, wc)
						}
						m.e.Status, m.changed = directory.Down, now
					case m.e.Status == directory.Down && silent >= to.RemoveAfter && now.Sub(m.changed) >= to.RemoveAfter:
						wc := directory.Change{ID: id, Kind: directory.Removed, From: directory.Down}
						if c != wc {
							t.Fatalf("peer %q down and silent %v: Tick change %+v, want %+v", id, silent, c, wc)
						}
						delete(want, id)
					default:
						if ok {
							t.Fatalf("Tick changed %q (status %s, silent %v): %+v", id, m.e.Status, silent, c)
						}
					}
				}
				if len(changed) > 0 {
					t.Fatalf("Tick reported unknown nodes: %+v", changed)
				}
			} else {
				e := entry(ids[int(idb)%len(ids)], uint64((pair>>4)%4), uint64((pair&0xf)%6), statuses[int(st)%len(statuses)])
				e.Users = int(st / 8 % 4)
				e.AgeMS = int64(dt) // must be ignored
				got := tab.Apply(e, now)
				stored := e
				stored.AgeMS = 0
				var wc directory.Change
				m, ok := want[e.ID]
				switch {
				case !ok:
					wc = directory.Change{ID: e.ID, Kind: directory.Added, To: e.Status}
					want[e.ID] = &model{e: stored, heard: now, changed: now}
				case !e.Newer(m.e):
					wc = directory.Change{ID: e.ID, Kind: directory.Stale, From: m.e.Status, To: m.e.Status}
				default:
					wc = directory.Change{ID: e.ID, Kind: directory.Refreshed, From: m.e.Status, To: e.Status}
					if m.e.Status != e.Status {
						wc.Kind = directory.StatusChanged
					}
					if m.e.Node != stored.Node {
						m.changed = now
						wc.Content = wc.Kind == directory.Refreshed
					}
					m.e, m.heard = stored, now
				}
				if got != wc {
					t.Fatalf("Apply(%+v) = %+v, want %+v", e, got, wc)
				}
			}

			var wantEntries []directory.Entry
			for _, m := range want {
				wantEntries = append(wantEntries, m.e)
			}
			slices.SortFunc(wantEntries, func(a, b directory.Entry) int { return strings.Compare(a.ID, b.ID) })
			// Plain == first: cmp.Diff on every step would slow the fuzzer tenfold.
			if entries := tab.Entries(); !slices.Equal(entries, wantEntries) {
				t.Fatalf("Entries (-got +want):\n%s", cmp.Diff(entries, wantEntries, cmpopts.EquateEmpty()))
			}
			if tab.Len() != len(want) {
				t.Fatalf("Len() = %d, want %d", tab.Len(), len(want))
			}
			nodes := tab.Nodes(now)
			if len(nodes) != len(want) {
				t.Fatalf("Nodes has %d nodes, want %d", len(nodes), len(want))
			}
			for i, n := range nodes {
				if i > 0 && nodes[i-1].ID >= n.ID {
					t.Fatalf("Nodes not strictly sorted by ID: %+v", nodes)
				}
				if wantAge := now.Sub(want[n.ID].heard).Milliseconds(); n.AgeMS != wantAge {
					t.Fatalf("node %q AgeMS = %d, want %d", n.ID, n.AgeMS, wantAge)
				}
			}
		}
	})
}
