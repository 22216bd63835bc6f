package node

import (
	"testing"

	"github.com/switchboard/switchboard/room"
)

// A leave whose wait gave up leaves its detach waiting for the leave's
// record; the same session joining again before that record is applied
// keeps its new registration when the record comes. Before, the old
// detach removed it: the session took itself for a member and got no
// deliveries.
func TestLateDetachSparesANewRegistration(t *testing.T) {
	r, err := room.New("lobby", room.DefaultConfig("n1", 1))
	if err != nil {
		t.Fatal(err)
	}
	f := &feed{r: r, sessions: map[string]*session{}, regOf: map[string]uint64{}}
	s := &session{user: "ann"}
	const key, leaveSeq = "s1", 5

	f.registerNow(key, s)
	detached := 0
	f.detachAt(key, leaveSeq, func(bool) { detached++ }) // the leave's wait, which gives up
	f.detachAt(key, 0, func(bool) { detached++ })        // the leave's fallback: out at once
	if _, ok := f.sessions[key]; ok || detached != 1 {
		t.Fatalf("after the fallback detach: registered %v, %d detaches done; want out, 1", ok, detached)
	}
	f.registerNow(key, s) // the session joins again
	// The leave's record is applied: its barrier runs.
	if len(f.waits) != 1 || f.waits[0].seq != leaveSeq {
		t.Fatalf("waits %+v, want the leave's barrier", f.waits)
	}
	f.waits[0].fn()
	if _, ok := f.sessions[key]; !ok || detached != 2 {
		t.Errorf("after the old leave's barrier: registered %v, %d detaches done; want the new registration kept, 2", ok, detached)
	}
	if r.Locals() != 1 {
		t.Errorf("the room has %d local sessions, want 1", r.Locals())
	}
	// A detach for the new registration still removes it.
	f.detachAt(key, 0, func(bool) { detached++ })
	if _, ok := f.sessions[key]; ok || r.Locals() != 0 {
		t.Errorf("a detach of the new registration left it: registered %v, %d locals", ok, r.Locals())
	}
}

// A leave whose wait gave up detaches the session again (forceDetach)
// and answers the leave itself only when that detach removed the
// session: when the leave's record was applied in between, the feed told
// the session it left and the barrier took it off, and a second presence
// leave would answer one leave twice. detachAt says which.
func TestDetachSaysWhetherItRemoved(t *testing.T) {
	r, err := room.New("lobby", room.DefaultConfig("n1", 1))
	if err != nil {
		t.Fatal(err)
	}
	f := &feed{r: r, sessions: map[string]*session{}, regOf: map[string]uint64{}}
	const key, leaveSeq = "s1", 5
	f.registerNow(key, &session{user: "ann"})
	var removed []bool
	done := func(ok bool) { removed = append(removed, ok) }
	f.detachAt(key, leaveSeq, done) // the leave's wait, which gives up
	f.waits[0].fn()                 // the record is applied before the fallback runs
	f.detachAt(key, 0, done)        // the leave's fallback
	if len(removed) != 2 || !removed[0] || removed[1] {
		t.Errorf("the barrier and the fallback removed %v, want [true false]", removed)
	}
}
