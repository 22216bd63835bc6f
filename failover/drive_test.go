package failover

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/pick"
)

func newRand(seed uint64) Rand { return rand.New(rand.NewPCG(seed, seed)) }

// world is a fake cluster for drive: what each node does when dialled, and
// the directory the common address hands out.
type world struct {
	dir      []directory.Node
	held     []directory.Node  // the directory a session holds when it drops
	behavior map[string]string // node -> "refuse", "full", "accept"
}

// drive plays the client's part: it runs the machine with the pick package
// against w until Done or Fail and returns the transcript.
func drive(t *testing.T, m *Machine, w *world, first Outcome, now time.Time) ([]string, time.Time) {
	t.Helper()
	policy := pick.Default(pick.NewRand(1))
	var nodes []directory.Node
	if first.Held {
		nodes = w.held
	}
	var log []string
	o := first
	for range 100 {
		a := m.Next(o, now)
		log = append(log, fmt.Sprintf("%s -> %s", o, a))
		now = now.Add(a.After + time.Millisecond)
		switch a.Step {
		case Refresh:
			nodes = w.dir
			o = Outcome{Kind: Fetched}
		case Pick:
			res, err := policy.Pick(nodes, pick.Request{Group: "eu/a", Exclude: m.ExcludeFunc(now)})
			if errors.Is(err, pick.ErrNoNode) {
				o = Outcome{Kind: NoCandidate, Err: err}
			} else {
				o = Outcome{Kind: Picked, Node: res.Node.ID}
			}
		case Dial, Retry:
			switch w.behavior[a.Node] {
			case "accept":
				o = Outcome{Kind: Attached, Node: a.Node}
			case "full":
				// The refusal carries a fresh directory showing the node full.
				nodes = append([]directory.Node(nil), w.dir...)
				for i := range nodes {
					if nodes[i].ID == a.Node {
						nodes[i].Status = directory.Full
					}
				}
				o = Outcome{Kind: Refused, Node: a.Node, Status: directory.Full}
			default:
				o = Outcome{Kind: DialFailed, Node: a.Node, Err: errors.New("connection refused")}
			}
		case Done, Fail:
			return log, now
		}
	}
	t.Fatal("drive: no Done or Fail after 100 steps")
	return nil, now
}

// TestDriveWithPick runs the whole order against the default pick policy:
// the zone's least loaded node refuses connections (retried twice, then
// excluded), the other zone node is full (excluded at once), so the client
// falls back to its region; when that session drops, to anywhere.
func TestDriveWithPick(t *testing.T) {
	w := &world{
		dir: []directory.Node{
			{ID: "n1", Group: "eu/a", Status: directory.Up, Users: 10, Capacity: 100},
			{ID: "n2", Group: "eu/a", Status: directory.Up, Users: 50, Capacity: 100},
			{ID: "n3", Group: "eu/b", Status: directory.Up, Users: 0, Capacity: 100},
			{ID: "n4", Group: "us/a", Status: directory.Up, Users: 0, Capacity: 100},
		},
		behavior: map[string]string{"n1": "refuse", "n2": "full", "n3": "accept", "n4": "accept"},
	}
	m, err := New(Config{}, top{})
	if err != nil {
		t.Fatal(err)
	}
	got, now := drive(t, m, w, Outcome{Kind: Begin}, t0)
	want := []string{
		"begin -> refresh",
		"fetched -> pick",
		"picked n1 -> dial n1",
		"dial failed n1 -> retry n1 after 20ms",
		"dial failed n1 -> retry n1 after 40ms",
		"dial failed n1 -> refresh",
		"fetched -> pick",
		"picked n2 -> dial n2",
		"refused n2 (full) -> pick",
		"picked n3 -> dial n3",
		"attached n3 -> done",
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Fatalf("first flow (-got +want):\n%s", diff)
	}
	got, _ = drive(t, m, w, Outcome{Kind: Dropped, Node: "n3"}, now.Add(time.Second))
	want = []string{
		"dropped n3 -> refresh after 250ms",
		"fetched -> pick",
		"picked n4 -> dial n4",
		"attached n4 -> done",
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Fatalf("after the drop (-got +want):\n%s", diff)
	}
	// n4 dies while the session holds a directory it pushed: the session
	// picks from it at once; n1 there is dead too, so it is tried and
	// excluded, n2, being full, refuses, and n3, its cool-down after its
	// own drop over meanwhile, takes the session: the common address was
	// never asked.
	w.held = w.dir
	w.behavior["n1"], w.behavior["n4"] = "refuse", "refuse"
	got, _ = drive(t, m, w, Outcome{Kind: Dropped, Node: "n4", Held: true}, now.Add(5500*time.Millisecond))
	want = []string{
		"dropped n4, directory held -> pick after 500ms", // n4 lived less than Stable
		"picked n1 -> dial n1",
		"dial failed n1 -> retry n1 after 20ms",
		"dial failed n1 -> retry n1 after 40ms",
		"dial failed n1 -> pick",
		"picked n2 -> dial n2",
		"refused n2 (full) -> pick",
		"picked n3 -> dial n3",
		"attached n3 -> done",
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Fatalf("after a drop holding a directory (-got +want):\n%s", diff)
	}
}

// TestDriveUntilDeadline: every node refuses, so the client cycles through
// them, backs off, and gives up at the deadline.
func TestDriveUntilDeadline(t *testing.T) {
	w := &world{
		dir: []directory.Node{
			{ID: "n1", Group: "eu/a", Status: directory.Up, Users: 0, Capacity: 100},
			{ID: "n2", Group: "eu/a", Status: directory.Up, Users: 1, Capacity: 100},
		},
		behavior: map[string]string{},
	}
	m, err := New(Config{}, newRand(3))
	if err != nil {
		t.Fatal(err)
	}
	got, end := drive(t, m, w, Outcome{Kind: Begin, Deadline: t0.Add(3 * time.Second)}, t0)
	last := got[len(got)-1]
	if end.After(t0.Add(3 * time.Second)) {
		t.Errorf("gave up at %v, after the deadline", end.Sub(t0))
	}
	for _, s := range []string{"no candidate -> fail: failover: deadline reached", "n1: 3 dials failed (last: connection refused)", "n2: 3 dials failed"} {
		if !strings.Contains(last, s) {
			t.Errorf("last line %q lacks %q", last, s)
		}
	}
	t.Logf("%d steps, ends: %s", len(got), last)
}

// TestZoneUnreachableFallsBackToAnotherGroup: the client's zone lists
// nodes that are up for their peers but out of this client's reach, and
// trying them all takes longer than the cool-down (four that time out
// after 2 s each; 32 whose TLS handshake fails after 40 ms, each dialled
// three times). A node that failed stays out of the flow until every
// other candidate has been tried, so Affinity runs out of zone nodes and
// the client attaches to the healthy node of another region; with the
// cool-down alone the first zone node came back before the last was
// tried, and the client went round the zone for ever.
func TestZoneUnreachableFallsBackToAnotherGroup(t *testing.T) {
	tests := []struct {
		name    string
		k       int
		timeout bool          // the zone's nodes time out, else refuse
		cost    time.Duration // what one attempt at a zone node costs
	}{
		{"4 zone nodes time out", 4, true, 2 * time.Second},
		{"32 zone nodes refuse", 32, false, 40 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dir []directory.Node
			for i := range tt.k {
				dir = append(dir, directory.Node{ID: fmt.Sprintf("a%d", i), Group: "eu/a", Status: directory.Up, Users: 10, Capacity: 100, HeartbeatMS: 200})
			}
			dir = append(dir, directory.Node{ID: "us1", Group: "us/a", Status: directory.Up, Users: 10, Capacity: 100, HeartbeatMS: 200})
			m, err := New(DefaultConfig(), newRand(1))
			if err != nil {
				t.Fatal(err)
			}
			policy := pick.Default(pick.NewRand(1))
			now := t0
			var nodes []directory.Node
			o := Outcome{Kind: Begin}
			for now.Sub(t0) < time.Minute {
				a := m.Next(o, now)
				now = now.Add(a.After)
				switch a.Step {
				case Refresh:
					now = now.Add(20 * time.Millisecond)
					nodes, o = dir, Outcome{Kind: Fetched}
				case Pick:
					res, err := policy.Pick(nodes, pick.Request{Group: "eu/a", Exclude: m.ExcludeFunc(now)})
					if err != nil {
						o = Outcome{Kind: NoCandidate, Err: err}
					} else {
						o = Outcome{Kind: Picked, Node: res.Node.ID}
					}
				case Dial, Retry:
					switch {
					case a.Node == "us1":
						o = Outcome{Kind: Attached, Node: a.Node}
					case tt.timeout:
						o = Outcome{Kind: Timeout, Node: a.Node, Err: errors.New("i/o timeout")}
					default:
						o = Outcome{Kind: DialFailed, Node: a.Node, Err: errors.New("tls: bad certificate")}
					}
					if a.Node != "us1" {
						now = now.Add(tt.cost)
					}
				case Done:
					t.Logf("attached to us1 after %v", now.Sub(t0))
					return
				default:
					t.Fatalf("%v", a)
				}
			}
			t.Fatalf("not attached after %v of simulated time: %s", now.Sub(t0), m.Tried(now))
		})
	}
}
