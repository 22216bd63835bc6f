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
	streams, ok := b.localStreams(server.JSzOptions{Streams: true, Config: true, StreamLeaderOnly: true})
	if !ok {
		return 0, false
	}
	self := b.server.Name()
	for _, st := range streams {
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

// localStreams reads the embedded server's own state of the global
// account's streams (what nats-server's /jsz shows) with opts; ok is
// false for an external NATS, a JetStream that is not clustered, or one
// not up yet.
func (b *Bus) localStreams(opts server.JSzOptions) ([]server.StreamDetail, bool) {
	if b.server == nil || !b.server.JetStreamIsClustered() {
		return nil, false
	}
	acc := b.server.GlobalAccount()
	if acc == nil {
		return nil, false
	}
	opts.Account = acc.GetName()
	d, err := b.server.JszAccount(&opts)
	if err != nil || d == nil {
		return nil, false
	}
	return d.Streams, true
}
