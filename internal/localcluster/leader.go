package localcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// RoomStream finds, through node n's embedded NATS (as the cluster's
// operator), the rooms' stream that holds room (a node shards its rooms
// over streams named *_ROOMS_<k>, on subjects ending in the room's name,
// dots written "="), and the server leading it: "" when it has no leader
// now. A room that has stored nothing is in no stream yet.
func (n *Node) RoomStream(ctx context.Context, room string) (stream, leader string, err error) {
	nc, js, err := n.jetStream(ctx)
	if err != nil {
		return "", "", err
	}
	defer nc.Close()
	st, err := roomStream(ctx, js, room)
	if err != nil {
		return "", "", fmt.Errorf("localcluster: %s: %w", n.ID, err)
	}
	info := st.CachedInfo()
	if info.Cluster != nil {
		leader = info.Cluster.Leader
	}
	return info.Config.Name, leader, nil
}

// MoveRoomLeader makes the server named to lead the rooms' stream that
// holds room, through node n: JetStream's leader stepdown with to as the
// preferred placement, asked again until to leads it or ctx ends.
func (n *Node) MoveRoomLeader(ctx context.Context, room, to string) error {
	nc, js, err := n.jetStream(ctx)
	if err != nil {
		return err
	}
	defer nc.Close()
	body, err := json.Marshal(map[string]any{"placement": map[string]string{"preferred": to}})
	if err != nil {
		return err
	}
	var last error
	for {
		done, err := moveRoomLeaderOnce(ctx, nc, js, room, body, to)
		if done {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("localcluster: moving the leader of room %s's stream to %s: %w (last: %v)", room, to, ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// moveRoomLeaderOnce looks whether to leads room's stream, and if another
// does, asks it to step down: one try, with a few seconds of its own, as
// a request in an election can go unanswered.
func moveRoomLeaderOnce(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, room string, stepdown []byte, to string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := roomStream(ctx, js, room)
	if err != nil {
		return false, err
	}
	info := st.CachedInfo()
	if info.Cluster != nil && info.Cluster.Leader == to {
		return true, nil
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		// Only a stream with a leader steps down; without one, it is
		// electing, and the next look sees whom.
		return false, nil
	}
	reply, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+info.Config.Name, stepdown)
	if err != nil {
		return false, err
	}
	var resp struct {
		Error *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(reply.Data, &resp); err == nil && resp.Error != nil {
		return false, errors.New(resp.Error.Description)
	}
	return false, nil
}

// jetStream connects to node n's embedded NATS as the cluster's operator.
func (n *Node) jetStream(ctx context.Context) (*nats.Conn, jetstream.JetStream, error) {
	url, err := n.NATSURL(ctx)
	if err != nil {
		return nil, nil, err
	}
	opts := []nats.Option{nats.Name("switchboard-localcluster"), nats.MaxReconnects(0)}
	if n.dial != nil {
		// Its client port listens on the node's own loopback.
		opts = append(opts, nats.SetCustomDialer(nodeDialer{ctx, n.dial}))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("localcluster: connecting to %s's NATS: %w", n.ID, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// roomStream is the rooms' stream holding room, its info fetched now.
func roomStream(ctx context.Context, js jetstream.JetStream, room string) (jetstream.Stream, error) {
	names := js.StreamNames(ctx)
	var streams []string
	for name := range names.Name() {
		if strings.Contains(name, "_ROOMS_") {
			streams = append(streams, name)
		}
	}
	if err := names.Err(); err != nil {
		return nil, err
	}
	token := strings.ReplaceAll(room, ".", "=")
	for _, name := range streams {
		st, err := js.Stream(ctx, name)
		if err != nil {
			return nil, err
		}
		info, err := st.Info(ctx, jetstream.WithSubjectFilter("*.*.room.*."+token))
		if err != nil {
			return nil, err
		}
		if len(info.State.Subjects) > 0 {
			return st, nil
		}
	}
	return nil, fmt.Errorf("no stream holds room %s (streams %v)", room, streams)
}

// nodeDialer is a nats.CustomDialer that dials from where a node runs.
type nodeDialer struct {
	ctx  context.Context
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Dial implements nats.CustomDialer.
func (d nodeDialer) Dial(network, addr string) (net.Conn, error) { return d.dial(d.ctx, network, addr) }

// StreamCopies lists, through node n's embedded NATS (as the cluster's
// operator), each stream of the cluster with the servers that hold a
// current copy of it: its leader and the replicas caught up with it.
func (n *Node) StreamCopies(ctx context.Context) (map[string][]string, error) {
	nc, js, err := n.jetStream(ctx)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	copies := map[string][]string{}
	streams := js.ListStreams(ctx)
	for info := range streams.Info() {
		var held []string
		if c := info.Cluster; c != nil {
			if c.Leader != "" {
				held = append(held, c.Leader)
			}
			for _, r := range c.Replicas {
				if r.Current && !r.Offline {
					held = append(held, r.Name)
				}
			}
		}
		copies[info.Config.Name] = held
	}
	if err := streams.Err(); err != nil {
		return nil, fmt.Errorf("localcluster: listing the streams through %s: %w", n.ID, err)
	}
	return copies, nil
}
