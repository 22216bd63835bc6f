package directory_test

import (
	"testing"
	"time"

	"github.com/switchboard/switchboard/directory"
)

func TestHeartbeatFor(t *testing.T) {
	const base, ceiling = 200 * time.Millisecond, 2 * time.Second
	tests := []struct {
		name          string
		base, ceiling time.Duration
		size          int
		want          time.Duration
	}{
		{"alone", base, ceiling, 1, base},
		{"three nodes: base", base, ceiling, 3, base},
		{"eleven nodes: 50 a second at base", base, ceiling, 11, base},
		{"twelve nodes: just past base", base, ceiling, 12, 400 * time.Millisecond},
		{"thirty nodes: 29 peers at 50 a second, rounded up", base, ceiling, 30, 600 * time.Millisecond},
		{"a hundred nodes", base, ceiling, 100, 2 * time.Second},
		{"three hundred nodes: the ceiling", base, ceiling, 300, ceiling},
		{"no ceiling: base at every size", base, 0, 300, base},
		{"ceiling below base: base", base, 100 * time.Millisecond, 300, base},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := directory.HeartbeatFor(tt.base, tt.ceiling, tt.size); got != tt.want {
				t.Errorf("HeartbeatFor(%v, %v, %d) = %v, want %v", tt.base, tt.ceiling, tt.size, got, tt.want)
			}
		})
	}
}

// TestHeartbeatBudget checks the rule's promise against a brute count:
// at every size each node receives at most the budget (or what base
// allows, which is less) of heartbeats a second.
func TestHeartbeatBudget(t *testing.T) {
	const base, ceiling = 200 * time.Millisecond, time.Hour
	for size := 1; size <= 2000; size++ {
		hb := directory.HeartbeatFor(base, ceiling, size)
		perSecond := float64(size-1) * float64(time.Second) / float64(hb)
		if perSecond > directory.HeartbeatBudget+1e-9 {
			t.Fatalf("size %d: heartbeat %v gives %.1f a second, more than the budget of %d", size, hb, perSecond, directory.HeartbeatBudget)
		}
	}
}

func TestValidateHeartbeatAndConn(t *testing.T) {
	ok := directory.Entry{Node: directory.Node{ID: "a", Addr: "a:1", Status: directory.Up}}
	tests := []struct {
		name    string
		hb      int64
		conn    string
		wantErr bool
	}{
		{"neither", 0, "", false},
		{"both", 2000, "NABC/12", false},
		{"negative heartbeat", -1, "", true},
		{"heartbeat past the most", directory.MaxHeartbeat.Milliseconds() + 1, "", true},
		{"conn too long", 0, string(make([]byte, 201)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ok
			e.HeartbeatMS, e.Conn = tt.hb, tt.conn
			if err := e.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

// A node whose heartbeat slowed raises the silence that makes a peer
// down: a newcomer announcing a quick heartbeat is then held to the
// slower one, and lowered again, to its own.
func TestSetDownAfter(t *testing.T) {
	tbl := directory.NewTable("a", timeouts)
	newcomer := entry("b", 1, 1, directory.Starting)
	newcomer.HeartbeatMS = 200
	tbl.Apply(newcomer, at(0))
	tbl.SetDownAfter(6 * time.Second)
	if changes := tbl.Tick(at(5 * time.Second)); len(changes) != 0 {
		t.Fatalf("5 s of silence with down after 6 s: %+v", changes)
	}
	if changes := tbl.Tick(at(6 * time.Second)); len(changes) != 1 || changes[0].To != directory.Down {
		t.Fatalf("6 s of silence with down after 6 s: %+v, want b down", changes)
	}
	tbl.Apply(entry("b", 1, 2, directory.Starting), at(7*time.Second))
	tbl.SetDownAfter(timeouts.DownAfter)
	if changes := tbl.Tick(at(7*time.Second + 600*time.Millisecond)); len(changes) != 1 || changes[0].To != directory.Down {
		t.Fatalf("600 ms of silence with the down after lowered to 600 ms: %+v, want b down", changes)
	}
}

// TestNextTick: Tick changes nothing just before NextTick and something
// at it, for each way a deadline is set.
func TestNextTick(t *testing.T) {
	down, remove := timeouts.DownAfter, timeouts.RemoveAfter
	slow := entry("c", 1, 1, directory.Up)
	slow.HeartbeatMS = 2000
	tests := []struct {
		name string
		in   []timed
		// downAfter, when set, is given to SetDownAfter after in.
		downAfter time.Duration
		// disconnect, when set, is the Conn Disconnected closes at its time.
		disconnect *timed
		want       time.Duration
	}{
		{name: "a silent peer goes down", in: []timed{{0, entry("b", 1, 1, directory.Up)}}, want: down},
		{name: "the peer heard longest ago first", in: []timed{{0, entry("b", 1, 1, directory.Up)}, {100 * time.Millisecond, entry("d", 1, 1, directory.Up)}}, want: down},
		{name: "a newer update moves it", in: []timed{{0, entry("b", 1, 1, directory.Up)}, {300 * time.Millisecond, entry("b", 1, 2, directory.Up)}}, want: 300*time.Millisecond + down},
		{name: "a slow heartbeat: three of it", in: []timed{{0, slow}}, want: 3 * 2 * time.Second},
		{name: "a raised down-after", in: []timed{{0, entry("b", 1, 1, directory.Up)}}, downAfter: 6 * time.Second, want: 6 * time.Second},
		{name: "a peer that said goodbye is removed", in: []timed{{0, entry("b", 1, 1, directory.Up)}, {time.Second, entry("b", 1, 2, directory.Down)}}, want: time.Second + remove},
		{name: "a closed connection: removed after its time", in: []timed{{0, withConn(entry("b", 1, 1, directory.Up), "c1")}}, disconnect: &timed{2 * time.Second, withConn(entry("b", 1, 1, directory.Up), "c1")}, want: 2*time.Second + remove},
		{name: "self has no deadline", in: []timed{{0, entry("a", 1, 1, directory.Up)}, {0, entry("b", 1, 1, directory.Up)}}, want: down},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			build := func() *directory.Table {
				tbl := directory.NewTable("a", timeouts)
				for _, u := range tt.in {
					tbl.Apply(u.e, at(u.at))
				}
				if tt.downAfter > 0 {
					tbl.SetDownAfter(tt.downAfter)
				}
				if tt.disconnect != nil {
					if len(tbl.Disconnected(tt.disconnect.e.Conn, at(tt.disconnect.at))) == 0 {
						t.Fatal("Disconnected changed nothing")
					}
				}
				return tbl
			}
			next, ok := build().NextTick()
			if !ok || !next.Equal(at(tt.want)) {
				t.Fatalf("NextTick = %v, %v; want %v", next.Sub(t0), ok, tt.want)
			}
			if c := build().Tick(next.Add(-time.Nanosecond)); len(c) != 0 {
				t.Errorf("Tick just before NextTick: %+v, want nothing", c)
			}
			if c := build().Tick(next); len(c) == 0 {
				t.Errorf("Tick at NextTick changed nothing")
			}
		})
	}
	if _, ok := directory.NewTable("a", timeouts).NextTick(); ok {
		t.Error("NextTick of an empty table: ok")
	}
}

func withConn(e directory.Entry, conn string) directory.Entry {
	e.Conn = conn
	return e
}
