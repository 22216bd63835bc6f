package sim

// Kinds of scheduled events.
const (
	evDepart  uint8 = iota // a session's lifetime ends
	evAttach               // a dial reaches a node: attach, refusal or failure
	evFetched              // a client has fetched a directory and picks
	evPick                 // a dropped client picks from the directory it held
)

// event is something that happens to session s at time at (nanoseconds);
// node is the node dialled (evAttach).
type event struct {
	at   int64
	seq  uint64 // order of scheduling, to break ties first-in first-out
	s    int32
	node int32
	kind uint8
}

func (a *event) before(b *event) bool {
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}

// queue is a binary min-heap of events by (at, seq). It is written out
// rather than built on container/heap to avoid boxing every event in an
// interface.
type queue struct {
	h   []event
	seq uint64
}

func (q *queue) len() int { return len(q.h) }

// top returns the earliest event; the queue must not be empty.
func (q *queue) top() *event { return &q.h[0] }

func (q *queue) push(e event) {
	e.seq = q.seq
	q.seq++
	q.h = append(q.h, e)
	i := len(q.h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q.h[i].before(&q.h[p]) {
			break
		}
		q.h[i], q.h[p] = q.h[p], q.h[i]
		i = p
	}
}

func (q *queue) pop() event {
	e := q.h[0]
	n := len(q.h) - 1
	q.h[0] = q.h[n]
	q.h = q.h[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && q.h[r].before(&q.h[l]) {
			c = r
		}
		if !q.h[c].before(&q.h[i]) {
			break
		}
		q.h[i], q.h[c] = q.h[c], q.h[i]
		i = c
	}
	return e
}
