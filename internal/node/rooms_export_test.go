package node

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	dto "github.com/prometheus/client_model/go"
)

// RoomReplication reports the rooms' streams as this node sees them: the
// lowest configured replicas among them, the fewest caught-up replicas
// (leader included), and the leader of the first. For tests.
func (n *Node) RoomReplication(ctx context.Context) (replicas, current int, leader string, err error) {
	e := n.rooms
	if e == nil || !e.Ready() {
		return 0, 0, "", fmt.Errorf("node %s: rooms not ready", n.cfg.ID)
	}
	replicas, current = 99, 99
	for k := range e.shards {
		st, err := e.js.Stream(ctx, e.streamName(k))
		if err != nil {
			return 0, 0, "", err
		}
		info := st.CachedInfo()
		replicas = min(replicas, info.Config.Replicas)
		if info.Cluster == nil {
			current = min(current, 1)
			continue
		}
		cur := 0
		if info.Cluster.Leader != "" {
			cur = 1
		}
		for _, p := range info.Cluster.Replicas {
			if p.Current && !p.Offline {
				cur++
			}
		}
		current = min(current, cur)
		if k == 0 {
			leader = info.Cluster.Leader
		}
	}
	return replicas, current, leader, nil
}

// RoomLeader is the server name (the sanitized node ID) of the leader of
// the stream holding room. For tests.
func (n *Node) RoomLeader(ctx context.Context, room string) (string, error) {
	e := n.rooms
	if e == nil || !e.Ready() {
		return "", fmt.Errorf("node %s: rooms not ready", n.cfg.ID)
	}
	info, err := e.js.Stream(ctx, e.streamOf(room))
	if err != nil {
		return "", err
	}
	if c := info.CachedInfo().Cluster; c != nil {
		return c.Leader, nil
	}
	return "", nil
}

// StopRoomConsumer stops the consumer of this node's feed of room behind
// the feed's back, as a consumer that silently stops delivering looks.
// For tests.
func (n *Node) StopRoomConsumer(ctx context.Context, room string) error {
	e := n.rooms
	e.mu.Lock()
	f := e.feeds[room]
	e.mu.Unlock()
	if f == nil {
		return fmt.Errorf("node %s holds no feed of room %s", n.cfg.ID, room)
	}
	return f.do(ctx, func() {
		if f.cc != nil {
			f.cc.Stop()
		}
		// Stop does not always silence the client library's ordered
		// consumer: one it is resetting as Stop comes (after missed
		// heartbeats, on a loaded machine) starts consuming again
		// afterwards, for a while. A stalled consumer brings nothing, so
		// the feed drops whatever this one still hands over, as it drops a
		// replaced consumer's records.
		f.gen++
	})
}

// HoldRoomConsumerRestart makes the next restarts of the consumer of
// room's feed on this node wait, once begun, until release is called;
// started is closed when the first begins. For tests.
func (n *Node) HoldRoomConsumerRestart(ctx context.Context, room string) (started <-chan struct{}, release func(), err error) {
	e := n.rooms
	e.mu.Lock()
	f := e.feeds[room]
	e.mu.Unlock()
	if f == nil {
		return nil, nil, fmt.Errorf("node %s holds no feed of room %s", n.cfg.ID, room)
	}
	begun, hold := make(chan struct{}), make(chan struct{})
	var once sync.Once
	err = f.do(ctx, func() {
		f.restartHook = func() {
			once.Do(func() { close(begun) })
			<-hold
		}
	})
	return begun, sync.OnceFunc(func() { close(hold) }), err
}

// HoldRoomWriter stops the writer of room's feed on this node (a local
// session must be in the room) until release is called: the text chunks
// that come meanwhile wait, and are stored together. For tests.
func (n *Node) HoldRoomWriter(ctx context.Context, room string) (release func(), err error) {
	e := n.rooms
	e.mu.Lock()
	f := e.feeds[room]
	e.mu.Unlock()
	if f == nil {
		return nil, fmt.Errorf("node %s: no feed for room %s", n.cfg.ID, room)
	}
	hold := make(chan struct{})
	select {
	case f.texts <- &textReq{hold: hold}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return func() { close(hold) }, nil
}

// RoomTextsWaiting counts the text chunks waiting for the writer of
// room's feed on this node. For tests.
func (n *Node) RoomTextsWaiting(room string) int {
	e := n.rooms
	e.mu.Lock()
	defer e.mu.Unlock()
	if f := e.feeds[room]; f != nil {
		return len(f.texts)
	}
	return 0
}

// RoomRecordsStored counts the records of op (text, batch, join, leave)
// this node stored. For tests.
func (n *Node) RoomRecordsStored(op string) float64 {
	var m dto.Metric
	if err := n.rooms.metrics.stored.WithLabelValues(op).Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// RoomTextStores counts the stores of text (lone chunks and batches) this
// node's writers tried, stored or not. For tests.
func (n *Node) RoomTextStores() uint64 {
	var m dto.Metric
	if err := n.rooms.metrics.batchChunks.Write(&m); err != nil {
		panic(err)
	}
	return m.GetHistogram().GetSampleCount()
}

// OpenRooms is how many rooms the node holds a feed for. For tests.
func (n *Node) OpenRooms() int { return n.rooms.openFeeds() }

// RoomsIncarnation is the incarnation the rooms take for node id's newest
// (0: none). For tests.
func (n *Node) RoomsIncarnation(id string) uint64 {
	if n.rooms == nil {
		return 0
	}
	return (*n.rooms.incs.Load())[id]
}

// StallRoom keeps room's feed, which must be open, busy serving nothing
// until the returned function is called. For tests.
func (n *Node) StallRoom(room string) (resume func()) {
	e := n.rooms
	e.mu.Lock()
	f := e.feeds[room]
	e.mu.Unlock()
	stalled := make(chan struct{})
	if err := f.do(context.Background(), func() { <-stalled }); err != nil {
		panic(err)
	}
	return sync.OnceFunc(func() { close(stalled) })
}

// RoomHolders is how many local sessions hold room's feed (0 if none is
// open). For tests.
func (n *Node) RoomHolders(room string) int {
	e := n.rooms
	e.mu.Lock()
	defer e.mu.Unlock()
	if f := e.feeds[room]; f != nil {
		return len(f.keys)
	}
	return 0
}

// StreamLeaderOf is what the presence rules of room are told about its
// stream's leader (roomEngine.streamLeader). For tests.
func (n *Node) StreamLeaderOf(room string) (id string, known bool) {
	if n.rooms == nil {
		return "", false
	}
	return n.rooms.streamLeader(n.rooms.streamOf(room))
}

// StepDownRoomStream asks the leader of room's stream to step down, so
// that another replica is elected. For tests.
func (n *Node) StepDownRoomStream(ctx context.Context, room string) error {
	e := n.rooms
	resp, err := e.conns[0].RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+e.streamName(e.shardOf(room)), nil)
	if err != nil {
		return err
	}
	var answer struct {
		Error *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &answer); err != nil {
		return err
	}
	if answer.Error != nil {
		return fmt.Errorf("stepping down the leader of room %s's stream: %s", room, answer.Error.Description)
	}
	return nil
}
