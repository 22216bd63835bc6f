package client

import (
	"context"
	"fmt"

	"github.com/switchboard/switchboard/wire"
)

// ViewSize is how many nodes a Session asks for in its hello (the hello's
// "max"): a node of a larger cluster answers with a view of that many,
// its group first and the rest weighted by spare capacity, and says in
// wire.Directory.Total how many it knows. 64 nodes take about 10 KiB;
// every policy picks from the view as it would from the whole directory.
const ViewSize = 64

// HelloView says hello on c asking for at most max nodes (0: as many as
// the node can send in a line) chosen for a client in group, and returns
// the directory it answers with. A node older than views ignores max and
// sends its whole directory.
func (c *Conn) HelloView(ctx context.Context, clientName, group string, max int) (*wire.Directory, error) {
	return c.HelloWith(ctx, wire.Message{Op: wire.OpHello, V: wire.Version, Client: clientName, Group: group, Max: max})
}

// HelloWith sends the hello m on c (wire.OpHello, with whatever it asks
// for: a view, pushes of changes) and returns the directory the node
// answers with, or its error (a *ServerError).
func (c *Conn) HelloWith(ctx context.Context, m wire.Message) (*wire.Directory, error) {
	if err := c.Send(m); err != nil {
		return nil, err
	}
	return c.recvDirectory(ctx)
}

// helloMessage is the session's hello: a view of ViewSize nodes chosen
// for its group, and pushes of what changed (delta.go) rather than whole
// views, which a node older than deltas ignores.
func (s *Session) helloMessage() wire.Message {
	return wire.Message{Op: wire.OpHello, V: wire.Version, Client: s.opts.clientName, Group: s.opts.group, Max: ViewSize, Deltas: true}
}

// recvDirectory reads c until the answer to a hello: the directory, or an
// error (a *ServerError).
func (c *Conn) recvDirectory(ctx context.Context) (*wire.Directory, error) {
	for {
		m, err := c.Recv(ctx)
		if err != nil {
			return nil, err
		}
		switch m.Op {
		case wire.OpDirectory:
			dir := m.Directory()
			if dir.Self == "" && dir.Nodes == nil {
				return nil, fmt.Errorf("client: empty directory from %s", c.addr)
			}
			return dir, nil
		case wire.OpError:
			return nil, asError(m)
		}
	}
}
