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

// metaGroup is the name nats-server gives the Raft group of JetStream's
// metadata, in the system account.
const metaGroup = "_meta_"

// StoppedGroups names the Raft groups of the embedded JetStream that have
// stopped on this server while JetStream runs: its metadata group
// ("_meta_") and the group of each stream of two copies or more it holds
// one of (nats-server runs no Raft node for a stream of one). nats-server
// stops a group for good, logging "Critical write error", when a write of
// its log or of its term and vote fails, as every write that opens a file
// does while the process's descriptor table is full. The stream's other
// copies go on without this one (one copy fewer to lose), and only a
// restart of JetStream (StopJetStream, then RestartJetStream) starts the
// group again. A group being created may be missing for a moment, so a
// caller acts only on a group that stays stopped. Nil for an external
// NATS, and for a JetStream not clustered or not running.
func (b *Bus) StoppedGroups() []string {
	if b.server == nil || !b.server.JetStreamEnabled() {
		return nil
	}
	streams, ok := b.localStreams(server.JSzOptions{Streams: true, Config: true, RaftGroups: true})
	if !ok {
		return nil
	}
	var stopped []string
	if sys := b.server.SystemAccount(); sys != nil && !b.groupRuns(sys.GetName(), metaGroup) {
		stopped = append(stopped, metaGroup)
	}
	acc := b.server.GlobalAccount().GetName()
	for _, st := range streams {
		if st.Config == nil || st.Config.Replicas <= 1 {
			continue // a lone copy has no Raft node to stop
		}
		if st.RaftGroup != "" && !b.groupRuns(acc, st.RaftGroup) {
			stopped = append(stopped, st.Name)
		}
	}
	return stopped
}

// groupRuns reports whether the embedded server runs the Raft group named
// group of account acc: nats-server forgets a group once it has stopped.
func (b *Bus) groupRuns(acc, group string) bool {
	rz := b.server.Raftz(&server.RaftzOptions{AccountFilter: acc, GroupFilter: group})
	if rz == nil {
		return false
	}
	g, ok := (*rz)[acc][group]
	return ok && g.State != server.Closed.String() && g.WALError == nil
}
