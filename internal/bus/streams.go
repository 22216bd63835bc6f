package bus

import "github.com/nats-io/nats-server/v2/server"

// StreamsCaughtUp counts the streams named by match that the embedded
// server leads and whose every configured copy is caught up with it
// (current and online, as the leader sees its followers). Each stream
// has one leader, so the counts of all the nodes add up to the streams
// that have a leader and all their copies: the streams that survive the
// loss of any minority of their copies. ok is false where the bus cannot
// tell (an external NATS, or JetStream not clustered).
func (b *Bus) StreamsCaughtUp(match func(name string) bool) (n int, ok bool) {
	if b.server == nil || !b.server.JetStreamIsClustered() {
		return 0, false
	}
	acc := b.server.GlobalAccount()
	if acc == nil {
		return 0, false
	}
	d, err := b.server.JszAccount(&server.JSzOptions{Account: acc.GetName(), Streams: true, Config: true, StreamLeaderOnly: true})
	if err != nil || d == nil {
		return 0, false
	}
	self := b.server.Name()
	for _, st := range d.Streams {
		if !match(st.Name) || st.Cluster == nil || st.Cluster.Leader != self || st.Config == nil {
			continue
		}
		current := 1 // the leader
		for _, p := range st.Cluster.Replicas {
			if p != nil && p.Current && !p.Offline {
				current++
			}
		}
		if current >= st.Config.Replicas {
			n++
		}
	}
	return n, true
}
