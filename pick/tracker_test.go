package pick

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/switchboard/switchboard/directory"
)

var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func users(nodes []directory.Node) map[string]int {
	out := map[string]int{}
	for _, n := range nodes {
		out[n.ID] = n.Users
	}
	return out
}

// TestTracker replays a transcript of directories seen and picks made, and
// checks the users the Tracker reports after each step.
func TestTracker(t *testing.T) {
	dir := func(a, b int) []directory.Node {
		return []directory.Node{node("a", "", a, 100), node("b", "", b, 100)}
	}
	type step struct {
		at      time.Duration // since epoch
		add     string        // record a pick of this node, or
		release string        // withdraw one, or
		see     []directory.Node
		want    map[string]int // users after Adjust(see)
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "picks add to the users until the directory shows them",
			steps: []step{
				{see: dir(10, 10), want: map[string]int{"a": 10, "b": 10}},
				{add: "a"}, {add: "a"}, {add: "b"},
				{see: dir(10, 10), want: map[string]int{"a": 12, "b": 11}},
				// The directory now shows one of the two on a: one stays pending.
				{at: time.Second, see: dir(11, 10), want: map[string]int{"a": 12, "b": 11}},
				// b shows three more (others' arrivals too): all of ours are in.
				{at: time.Second, see: dir(12, 13), want: map[string]int{"a": 12, "b": 13}},
			},
		},
		{
			name: "pending picks expire after the TTL",
			steps: []step{
				{see: dir(0, 0), want: map[string]int{"a": 0, "b": 0}},
				{add: "a"},
				{at: 4 * time.Second, add: "a"},
				{at: 4999 * time.Millisecond, see: dir(0, 0), want: map[string]int{"a": 2, "b": 0}},
				{at: 5 * time.Second, see: dir(0, 0), want: map[string]int{"a": 1, "b": 0}},
				{at: 9 * time.Second, see: dir(0, 0), want: map[string]int{"a": 0, "b": 0}},
			},
		},
		{
			name: "a fall in users clears nothing",
			steps: []step{
				{see: dir(10, 0), want: map[string]int{"a": 10, "b": 0}},
				{add: "a"},
				{at: time.Second, see: dir(8, 0), want: map[string]int{"a": 9, "b": 0}},
				{at: time.Second, see: dir(9, 0), want: map[string]int{"a": 9, "b": 0}},
			},
		},
		{
			name: "a lower count soon after a higher one is an older view",
			steps: []step{
				// a's own directory counts its arrivals at once; b's shows
				// a's count of a moment ago.
				{see: dir(10, 0), want: map[string]int{"a": 10, "b": 0}},
				{add: "a"}, {add: "a"},
				{at: 10 * time.Millisecond, see: dir(11, 0), want: map[string]int{"a": 12, "b": 0}},
				{at: 20 * time.Millisecond, see: dir(10, 0), want: map[string]int{"a": 12, "b": 0}},
				{at: 30 * time.Millisecond, see: dir(12, 0), want: map[string]int{"a": 12, "b": 0}},
				// Still lower a second after a's last higher count: users left.
				{at: 1030 * time.Millisecond, see: dir(7, 0), want: map[string]int{"a": 7, "b": 0}},
			},
		},
		{
			name: "release withdraws a failed pick",
			steps: []step{
				{see: dir(0, 0), want: map[string]int{"a": 0, "b": 0}},
				{add: "a"}, {add: "a"}, {release: "a"}, {release: "b"},
				{see: dir(0, 0), want: map[string]int{"a": 1, "b": 0}},
			},
		},
		{
			name: "a pick of a node never seen is cleared only by the TTL",
			steps: []step{
				{add: "a"},
				{see: dir(5, 0), want: map[string]int{"a": 6, "b": 0}},
				{at: 5 * time.Second, see: dir(5, 0), want: map[string]int{"a": 5, "b": 0}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTracker(0)
			for i, s := range tt.steps {
				now := epoch.Add(s.at)
				switch {
				case s.add != "":
					tr.Add(s.add, now)
				case s.release != "":
					tr.Release(s.release)
				default:
					before := append([]directory.Node(nil), s.see...)
					got := tr.Adjust(s.see, now)
					if diff := cmp.Diff(users(got), s.want); diff != "" {
						t.Fatalf("step %d (-got +want):\n%s", i, diff)
					}
					if diff := cmp.Diff(s.see, before); diff != "" {
						t.Fatalf("step %d modified its input (-got +want):\n%s", i, diff)
					}
				}
			}
		})
	}
}

func TestTrackerPickAndForget(t *testing.T) {
	tr := NewTracker(time.Second)
	nodes := []directory.Node{node("a", "", 0, 10), node("b", "", 1, 10)}
	res, err := tr.Pick(LeastUsers(NewRand(1)), nodes, Request{}, epoch)
	if err != nil {
		t.Fatal(err)
	}
	if res.Node.ID != "a" || res.Reason != "least-users: a (load 0.00), 1 of 2 tied" {
		t.Fatalf("first pick = %s %q", res.Node.ID, res.Reason)
	}
	// a now counts 1 user, as b does: a tie, and the note says so.
	res, err = tr.Pick(LeastUsers(&script{t: t, answers: []int{1}}), nodes, Request{}, epoch)
	if err != nil {
		t.Fatal(err)
	}
	if want := "least-users: a (load 0.10), 2 of 2 tied; tracker: 1 pending picks counted"; res.Reason != want {
		t.Fatalf("Reason = %q, want %q", res.Reason, want)
	}
	if got := tr.Pending("a", epoch); got != 2 {
		t.Fatalf("Pending(a) = %d, want 2", got)
	}
	if got := tr.Pending("a", epoch.Add(time.Second)); got != 0 {
		t.Fatalf("Pending(a) after the TTL = %d, want 0", got)
	}
	if got := tr.Pending("zz", epoch); got != 0 {
		t.Fatalf("Pending(zz) = %d, want 0", got)
	}
	// A node that leaves the directory with nothing pending is forgotten.
	tr.Adjust(nodes[1:], epoch.Add(time.Second))
	tr.mu.Lock()
	_, kept := tr.nodes["a"]
	tr.mu.Unlock()
	if kept {
		t.Error("tracker still holds a node that left the directory with nothing pending")
	}
}

// A directory held longer than TrackerSettle (a session that reattaches
// from what its node pushed a while ago) teaches the Tracker nothing: its
// old counts lower nothing and clear no pending pick; it only gets the
// kept counts and the pending picks added. A fresh directory (Observe)
// then clears the picks it shows.
func TestTrackerHeldDirectoryTeachesNothing(t *testing.T) {
	tr := NewTracker(0)
	var got []map[string]int
	firstOf := PolicyFunc(func(nodes []directory.Node, req Request) (Result, error) {
		got = append(got, users(nodes))
		return Result{Node: nodes[0], Reason: "first"}, nil
	})
	two := func(a, b int) []directory.Node {
		return []directory.Node{node("a", "", a, 1000), node("b", "", b, 1000)}
	}
	tr.Observe(two(100, 100), epoch)
	held := Request{Age: 20 * time.Second}
	at := epoch.Add(2 * time.Second)
	for range 2 {
		if _, err := tr.Pick(firstOf, two(40, 60), held, at); err != nil {
			t.Fatal(err)
		}
	}
	// Held long, yet showing a higher count for a: still no news.
	if _, err := tr.Pick(firstOf, two(150, 60), held, at); err != nil {
		t.Fatal(err)
	}
	want := []map[string]int{{"a": 100, "b": 100}, {"a": 101, "b": 100}, {"a": 152, "b": 100}}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("what the policy saw (-got +want):\n%s", diff)
	}
	if n := tr.Pending("a", at); n != 3 {
		t.Errorf("pending on a = %d, want 3", n)
	}
	// The node's answer to the next hello shows two of the three.
	tr.Observe(two(102, 100), at)
	if diff := cmp.Diff(users(tr.Adjust(two(102, 100), at)), map[string]int{"a": 103, "b": 100}); diff != "" {
		t.Errorf("after a fresh directory (-got +want):\n%s", diff)
	}
}

// A session applies pushes of changes to the directory it holds: the
// directory is new (Request.Age is the time since the last push) while
// the entries no push carried keep the users of the last whole view,
// their AgeMS grown since. Those entries teach the Tracker nothing (20
// pending picks were taken for arrived when a count of 5 minutes ago
// was above the one kept); the entry the last push carried does.
func TestTrackerOldEntriesOfAPushedDirectoryTeachNothing(t *testing.T) {
	tr := NewTracker(0)
	var got []map[string]int
	pickLast := PolicyFunc(func(nodes []directory.Node, req Request) (Result, error) {
		got = append(got, users(nodes))
		return Result{Node: nodes[len(nodes)-1], Reason: "last"}, nil
	})
	fresh := func(n1, n2, n3 int) []directory.Node {
		return []directory.Node{node("n1", "", n1, 1000), node("n2", "", n2, 1000), node("n3", "", n3, 1000)}
	}
	tr.Observe(fresh(100, 100, 50)[:2], epoch)
	for range 20 {
		tr.Add("n1", epoch)
	}
	// 2 s later a session reattaches from the directory it holds: n1 and
	// n2 show their users of its attach 5 minutes ago (n1 150: 50 have
	// left since; n2 40), n3 joined in the push of 100 ms ago.
	at := epoch.Add(2 * time.Second)
	held := fresh(150, 40, 50)
	for i := range held {
		held[i].HeartbeatMS = 200
		held[i].AgeMS = 300_000
	}
	held[2].AgeMS = 5
	if _, err := tr.Pick(pickLast, held, Request{Age: 100 * time.Millisecond}, at); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, []map[string]int{{"n1": 170, "n2": 100, "n3": 50}}); diff != "" {
		t.Errorf("what the policy saw (-got +want):\n%s", diff)
	}
	if n := tr.Pending("n1", at); n != 20 {
		t.Errorf("pending on n1 = %d, want 20: the old count showed none of them", n)
	}
	// The next hello's directory: the pick of n3 arrived; n1 has 120
	// users, 20 of them ours.
	if diff := cmp.Diff(users(tr.Adjust(fresh(120, 100, 51), at)), map[string]int{"n1": 120, "n2": 100, "n3": 51}); diff != "" {
		t.Errorf("after a fresh directory (-got +want):\n%s", diff)
	}
}
