//go:build !linux

package localcluster

import (
	"context"
	"net"
)

// DialContext connects to addr from inside node i's namespace: Linux
// only, as namespaces are.
func (n *Net) DialContext(ctx context.Context, i int, network, addr string) (net.Conn, error) {
	return nil, ErrNoNetns
}
