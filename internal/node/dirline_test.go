package node

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/wire"
)

// The directory line assembled from the cached encoding is byte for byte
// what encoding the whole message would give.
func TestDirectoryLineMatchesEncode(t *testing.T) {
	taken := time.Unix(1000, 0)
	tests := []struct {
		name  string
		nodes []directory.Node
		now   time.Time
	}{
		{"no nodes", nil, taken},
		{"one node, just taken", []directory.Node{{ID: "n1", Addr: "127.0.0.1:7070", Status: directory.Up, Capacity: 10}}, taken},
		{"several, later", []directory.Node{
			{ID: "n1", Addr: "127.0.0.1:7070", HTTP: "127.0.0.1:7071", Group: "eu/a", Status: directory.Up, Users: 3, Capacity: 10, Version: "dev", AgeMS: 12},
			{ID: "n\"2", Addr: "[::1]:7070", Group: "us <&>", Status: directory.Down, Users: 0, Capacity: 5, AgeMS: 900},
			{ID: "n3é", Addr: "h:1", Status: directory.Full, Users: 5, Capacity: 5},
		}, taken.Add(1500 * time.Millisecond)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &view{nodes: tt.nodes, taken: taken}
			for range 2 { // the second read uses the cache
				got, err := v.directoryLine("chat.local", "n1", tt.now)
				if err != nil {
					t.Fatal(err)
				}
				nodes := make([]directory.Node, len(tt.nodes))
				for i, n := range tt.nodes {
					n.AgeMS += tt.now.Sub(taken).Milliseconds()
					nodes[i] = n
				}
				want, err := wire.Encode(wire.DirectoryMessage(&wire.Directory{Service: "chat.local", Self: "n1", Nodes: nodes}))
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(string(got), string(want)); diff != "" {
					t.Errorf("directory line (-got +want):\n%s", diff)
				}
			}
		})
	}
}

// Views that share a part cache encode byte for byte what a fresh
// encoding gives, through a peer's change of status, a newcomer and a
// departure; an entry that did not change keeps its part (the same
// bytes, not encoded again), one that did gets a new one.
func TestPartCacheFollowsChanges(t *testing.T) {
	taken := time.Unix(1000, 0)
	n1 := directory.Node{ID: "n1", Addr: "127.0.0.1:7070", Status: directory.Up, Capacity: 10, AgeMS: 5}
	n2 := directory.Node{ID: "n2", Addr: "127.0.0.2:7070", Status: directory.Starting, Capacity: 10}
	n2up := n2
	n2up.Status, n2up.AgeMS = directory.Up, 40
	n3 := directory.Node{ID: "n3", Addr: "127.0.0.3:7070", Group: "eu", Status: directory.Up, Capacity: 10}
	n1older := n1
	n1older.AgeMS = 900 // only its age moved: the same part
	steps := []struct {
		name   string
		nodes  []directory.Node
		reused []string // nodes whose part the previous step made
	}{
		{"first view", []directory.Node{n1, n2}, nil},
		{"a peer comes up, another only ages", []directory.Node{n1older, n2up}, []string{"n1"}},
		{"a newcomer", []directory.Node{n1, n2up, n3}, []string{"n1", "n2"}},
		{"a peer leaves", []directory.Node{n1, n3}, []string{"n1", "n3"}},
		{"it comes back", []directory.Node{n1, n2, n3}, []string{"n1", "n3"}},
	}
	var cache partCache
	prev := map[string][]byte{}
	for _, step := range steps {
		v := &view{nodes: step.nodes, taken: taken, parts: &cache}
		got, err := v.directoryLine("chat.local", "n1", taken)
		if err != nil {
			t.Fatal(err)
		}
		fresh, err := (&view{nodes: step.nodes, taken: taken}).directoryLine("chat.local", "n1", taken)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(got), string(fresh)); diff != "" {
			t.Errorf("%s: line (-cached +fresh):\n%s", step.name, diff)
		}
		enc, _ := v.encoded("chat.local", "n1")
		parts := map[string][]byte{}
		var reused []string
		for i, n := range step.nodes {
			parts[n.ID] = enc.parts[i]
			if p, ok := prev[n.ID]; ok && &p[0] == &enc.parts[i][0] {
				reused = append(reused, n.ID)
			}
		}
		if diff := cmp.Diff(reused, step.reused); diff != "" {
			t.Errorf("%s: parts reused (-got +want):\n%s", step.name, diff)
		}
		prev = parts
	}
}

// bigView is a snapshot of n nodes with long addresses and groups, as a
// flood or a very large cluster would leave it.
func bigView(n int, taken time.Time) *view {
	nodes := make([]directory.Node, n)
	groups := []string{"eu-west/a", "eu-west/b", "us-east/a"}
	for i := range nodes {
		nodes[i] = directory.Node{
			ID: fmt.Sprintf("node-%05d.example.com", i), Addr: fmt.Sprintf("node-%05d.example.com:7070", i),
			HTTP: fmt.Sprintf("node-%05d.example.com:7071", i), Group: groups[i%len(groups)],
			Status: directory.Up, Users: i % 1000, Capacity: 1000, Version: "v1.2.3-0.20250101000000-abcdefabcdef", AgeMS: int64(i),
		}
	}
	return &view{nodes: nodes, taken: taken}
}

// A view line is what encoding its nodes would give, with "total" when it
// holds only some; it never passes wire.MaxLine however large the
// directory; a hello that asks for 64 of 1,000 nodes is answered in at
// most 16 KiB; a small directory is sent whole, without "total".
func TestViewLine(t *testing.T) {
	taken := time.Unix(1000, 0)
	now := taken.Add(2500 * time.Millisecond)
	tests := []struct {
		name      string
		nodes     int
		want      viewWant
		wantNodes int // 0: any that fit
		maxBytes  int
	}{
		{"small, whole", 5, viewWant{}, 5, wire.MaxLine},
		{"small, asked for more", 5, viewWant{max: 64, group: "eu-west/a"}, 5, wire.MaxLine},
		{"1,000 asking for 64", 1000, viewWant{max: 64, group: "eu-west/a"}, 64, 16 << 10},
		{"1,000, a v1 client", 1000, viewWant{}, 0, wire.MaxLine},
		{"5,000 asking for too many", 5000, viewWant{max: 5000, group: "us-east/a"}, 0, wire.MaxLine},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := bigView(tt.nodes, taken)
			line, whole, err := v.viewLine("chat.example.com", "node-00000.example.com", now, tt.want, rand.New(rand.NewPCG(1, 2)))
			if err != nil {
				t.Fatal(err)
			}
			if len(line)-1 > tt.maxBytes {
				t.Fatalf("a line of %d bytes, the most is %d", len(line)-1, tt.maxBytes)
			}
			m, err := wire.Decode(line[:len(line)-1])
			if err != nil {
				t.Fatal(err)
			}
			got := m.Directory()
			if tt.wantNodes > 0 && len(got.Nodes) != tt.wantNodes {
				t.Fatalf("%d nodes, want %d", len(got.Nodes), tt.wantNodes)
			}
			if whole != (len(got.Nodes) == tt.nodes) {
				t.Fatalf("whole = %v with %d of %d nodes", whole, len(got.Nodes), tt.nodes)
			}
			wantTotal := tt.nodes
			if whole {
				wantTotal = 0
			}
			if got.Total != wantTotal {
				t.Fatalf("total %d, want %d", got.Total, wantTotal)
			}
			// Byte for byte what encoding the chosen nodes gives.
			for i := range got.Nodes {
				if got.Nodes[i].AgeMS < 2500 {
					t.Fatalf("%s is %d ms old, want its age plus 2,500", got.Nodes[i].ID, got.Nodes[i].AgeMS)
				}
			}
			want, err := wire.Encode(wire.DirectoryMessage(got))
			if err != nil {
				t.Fatal(err)
			}
			if string(line) != string(want) {
				t.Fatalf("the line differs from its encoding:\n%s\n%s", line, want)
			}
		})
	}
}

// A push draws at most pushVariants views per want, hands the sessions
// different ones, and one line for all when the directory fits whole.
func TestPushLines(t *testing.T) {
	taken := time.Unix(1000, 0)
	big := newPushLines(bigView(1000, taken), "s", "n", taken)
	distinct := map[string]bool{}
	for range 100 {
		line, err := big.line(viewWant{max: 32, group: "eu-west/b"})
		if err != nil {
			t.Fatal(err)
		}
		distinct[string(line)] = true
	}
	if len(distinct) != pushVariants {
		t.Errorf("100 sessions got %d distinct views, want %d", len(distinct), pushVariants)
	}
	small := newPushLines(bigView(10, taken), "s", "n", taken)
	distinct = map[string]bool{}
	for range 100 {
		line, err := small.line(viewWant{max: 32})
		if err != nil {
			t.Fatal(err)
		}
		distinct[string(line)] = true
	}
	if len(distinct) != 1 {
		t.Errorf("a directory that fits went out as %d distinct lines, want 1", len(distinct))
	}
}

// BenchmarkDeltaAfterOneChange is the encoding a push of changes costs
// when one peer of size changed since the last view: with the node's part
// cache (one entry encoded) and without it (every entry encoded).
func BenchmarkDeltaAfterOneChange(b *testing.B) {
	for _, size := range []int{100, 1000} {
		for _, cached := range []bool{false, true} {
			b.Run(fmt.Sprintf("nodes=%d/cache=%v", size, cached), func(b *testing.B) {
				taken := time.Unix(1000, 0)
				// Views alternate between two directories one peer apart.
				a := bigView(size, taken).nodes
				b2 := slices.Clone(a)
				b2[size/2].Users++
				var cache *partCache
				if cached {
					cache = &partCache{}
				}
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					nodes := a
					if i%2 == 1 {
						nodes = b2
					}
					v := &view{nodes: nodes, taken: taken, parts: cache}
					changed := map[string]struct{}{nodes[size/2].ID: {}}
					if _, err := v.deltaLine("chat.local", "n1", taken, changed); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
