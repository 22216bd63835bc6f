package localcluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/leaktest"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

var binary string

func TestMain(m *testing.M) { RunTests(leaktest.LeakChecked(m), &binary) }

// settle bounds every wait of these tests: generous, for a loaded CI.
const settle = 60 * time.Second

// nodeLogs collects the nodes' JSON log lines (serve --log-format json).
type nodeLogs struct{ nodetest.LockedBuffer }

// contains reports whether the nodes logged a line containing text.
func (l *nodeLogs) contains(text string) bool {
	return strings.Contains(l.String(), text)
}

// created returns the replicas of every "created the rooms' storage" line
// the nodes logged, and the logs as text.
func (l *nodeLogs) created() ([]int, string) {
	text := l.String()
	var out []int
	sc := bufio.NewScanner(bytes.NewBufferString(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct {
			Msg      string `json:"msg"`
			Replicas int    `json:"replicas"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "created the rooms' storage" {
			out = append(out, line.Replicas)
		}
	}
	return out, text
}

// startFresh starts a new 3-node cluster the way docs/operations.md
// tells operators to (every node's --join names the other two), the
// third node only once the first two have elected JetStream's metadata
// leader, as nodes started by hand or on three hosts come up a little
// apart, and waits for nothing more. JetStream then answers before the
// third node is there: a node that took the nodes it sees for the
// cluster's size would create the rooms' storage with 2 replicas (or 1,
// before its directory heard the second).
func startFresh(t *testing.T) (*Cluster, *nodeLogs) {
	t.Helper()
	ctx := context.Background()
	logs := &nodeLogs{}
	// Debug: nats-server's notices, the metadata election among them.
	c, err := Start(ctx, Config{Binary: binary, Nodes: 2, Seeds: 3,
		Args: []string{"--log-format", "json", "--log-level", "debug"}, Output: logs, NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	if err := Await(ctx, settle, func(context.Context) error {
		if !logs.contains("JetStream cluster new metadata leader") && !logs.contains("Self is new JetStream cluster metadata leader") {
			return errors.New("the first two nodes have elected no JetStream metadata leader")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.start(); err != nil { // Add, without its wait
		t.Fatal(err)
	}
	return c, logs
}

// awaitReady waits until every node's /readyz answers 200 and returns,
// for each node, its switchboard_room_replicas read right after its first
// 200: the replicas its rooms became ready with (the raise of a later
// grown cluster comes a second after readiness at the earliest).
func awaitReady(t *testing.T, c *Cluster) []int {
	t.Helper()
	ctx := context.Background()
	replicas := make([]int, len(c.Nodes))
	errs := make([]error, len(c.Nodes))
	var wg sync.WaitGroup
	for i, n := range c.Nodes {
		wg.Go(func() {
			errs[i] = Await(ctx, settle, func(ctx context.Context) error {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.HTTP+"/readyz", nil)
				if err != nil {
					return err
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return err
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("%s's /readyz: %s", n.ID, resp.Status)
				}
				replicas[i], err = n.RoomReplicas(ctx)
				return err
			})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return replicas
}

// TestFreshClusterStartsWithFullReplicas: a new 3-node cluster, started
// without waiting between its nodes, creates its rooms' streams and
// snapshot bucket with 3 replicas from the start, never 2 raised to 3
// later, and every node says 3 when it becomes ready.
func TestFreshClusterStartsWithFullReplicas(t *testing.T) {
	c, logs := startFresh(t)
	replicas := awaitReady(t, c)
	for i, r := range replicas {
		if r != 3 {
			t.Errorf("%s became ready with its rooms on %d replicas, want 3", c.Nodes[i].ID, r)
		}
	}
	created, text := logs.created()
	if len(created) == 0 {
		t.Fatalf("no node logged creating the rooms' storage; logs:\n%s", text)
	}
	for _, r := range created {
		if r != 3 {
			t.Errorf("the rooms' storage was created with %d replicas (all creations: %v), want 3 only", r, created)
		}
	}
}

// TestKillRightAfterReadyKeepsRooms: kill -9 of a node of a fresh cluster
// as soon as every node is ready, without waiting for the replicas to
// catch up, leaves rooms the survivors store text in: text typed on one
// survivor, in a room of every stream, is acknowledged and shown to a
// member joining on the other.
func TestKillRightAfterReadyKeepsRooms(t *testing.T) {
	c, _ := startFresh(t)
	awaitReady(t, c)
	// n1 is the seed, a member of the metadata group from its first
	// election and so of every stream created before a third node joined.
	if err := c.Kill(0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*settle)
	defer cancel()
	rooms := roomPerStream(8) // serve's default --room-streams
	writer := dialRoomsUser(ctx, t, c.Nodes[1].Addr, "writer")
	for _, room := range rooms {
		if _, err := writer.join(ctx, room); err != nil {
			t.Fatalf("joining %s on %s after the kill: %v", room, c.Nodes[1].ID, err)
		}
		if err := writer.store(ctx, room, 1, "typed after the kill in "+room); err != nil {
			t.Fatalf("storing text in %s on %s after the kill: %v", room, c.Nodes[1].ID, err)
		}
	}
	reader := dialRoomsUser(ctx, t, c.Nodes[2].Addr, "reader")
	for _, room := range rooms {
		state, err := reader.join(ctx, room)
		if err != nil {
			t.Fatalf("joining %s on %s after the kill: %v", room, c.Nodes[2].ID, err)
		}
		if got, want := state.Live["writer"], "typed after the kill in "+room; got != want {
			t.Errorf("%s on %s shows the writer's line %q, want %q", room, c.Nodes[2].ID, got, want)
		}
	}
}

// roomPerStream returns one room name for each of the streams the rooms
// are spread over, by the node's mapping (an FNV-1a hash of the name
// modulo the number of streams).
func roomPerStream(streams int) []string {
	rooms := make([]string, streams)
	left := streams
	for i := 0; left > 0; i++ {
		name := "fresh-" + strconv.Itoa(i)
		h := fnv.New32a()
		h.Write([]byte(name))
		if k := int(h.Sum32() % uint32(streams)); rooms[k] == "" {
			rooms[k] = name
			left--
		}
	}
	return rooms
}

// roomsUser is one attached session speaking the protocol directly.
type roomsUser struct {
	conn *client.Conn
	user string
}

func dialRoomsUser(ctx context.Context, t *testing.T, addr, user string) *roomsUser {
	t.Helper()
	conn, err := client.DialConn(ctx, nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Hello(ctx, "switchboard-test/1", ""); err != nil {
		t.Fatal(err)
	}
	if err := conn.Send(wire.Message{Op: wire.OpAttach, User: user}); err != nil {
		t.Fatal(err)
	}
	return &roomsUser{conn: conn, user: user}
}

// join joins room, again after each `unavailable` (its stream electing
// a leader), and returns the room's state.
func (u *roomsUser) join(ctx context.Context, room string) (*wire.RoomState, error) {
	if err := u.conn.Send(wire.Message{Op: wire.OpJoin, Room: room}); err != nil {
		return nil, err
	}
	for {
		m, err := u.conn.Recv(ctx)
		if err != nil {
			return nil, err
		}
		switch {
		case m.Op == wire.OpRoom && m.Room == room && m.State != nil:
			return m.State, nil
		case m.Op == wire.OpError && m.Code == wire.CodeUnavailable:
			if err := u.conn.Send(wire.Message{Op: wire.OpJoin, Room: room}); err != nil {
				return nil, err
			}
		case m.Op == wire.OpError:
			return nil, fmt.Errorf("%s: %s", m.Code, m.Message)
		}
	}
}

// store sends text as chunk seq of room until it is acknowledged, sending
// the same chunk again after each `unavailable` (a duplicate is acked,
// never stored twice).
func (u *roomsUser) store(ctx context.Context, room string, seq uint64, text string) error {
	chunk := wire.Message{Op: wire.OpText, Room: room, Seq: seq, T: text}
	if err := u.conn.Send(chunk); err != nil {
		return err
	}
	for {
		m, err := u.conn.Recv(ctx)
		if err != nil {
			return err
		}
		switch {
		case m.Op == wire.OpAck && m.Room == room && m.Seq == seq:
			return nil
		case m.Op == wire.OpError && m.Code == wire.CodeUnavailable:
			if err := u.conn.Send(chunk); err != nil {
				return err
			}
		case m.Op == wire.OpError:
			return fmt.Errorf("%s: %s", m.Code, m.Message)
		}
	}
}
