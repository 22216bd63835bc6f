package node

import "github.com/nats-io/nats.go"

// GeneralConn is n's general bus connection. For tests.
func (n *Node) GeneralConn() *nats.Conn { return n.bus.Conn }

// DirConn is n's directory connection. For tests.
func (n *Node) DirConn() *nats.Conn { return n.bus.Dir }

// ListenEntries subscribes to the directory's entries as n does, on n's
// directory connection, but hands them to a queue of its own that
// nothing reads, and returns that queue and the subscriptions, which the
// caller unsubscribes. For tests of what may wait for run.
func (n *Node) ListenEntries() (<-chan *nats.Msg, []*nats.Subscription, error) {
	listener := &Node{cfg: n.cfg, log: n.log, bus: n.bus, entryMsgs: make(chan *nats.Msg, entryQueue)}
	subs, err := listener.subscribeEntries()
	if err == nil {
		err = n.bus.Dir.Flush()
	}
	return listener.entryMsgs, subs, err
}

// EntryQueue is entryQueue and MaxEntrySize maxEntrySize. For tests.
var (
	EntryQueue   = entryQueue
	MaxEntrySize = maxEntrySize
)
