package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// userSystem is the embedded server's user in NATS's system account, the
// only account whose requests JetStream's metadata leader takes to remove
// a server from its peer sets. It exists only in a clustered server with
// JetStream, its password is drawn at random by Open, and nats-server
// admits it only on an in-process connection: no client that dials the
// loopback port can be it, whatever it knows.
const userSystem = "system"

// systemAccount is the name nats-server gives its system account by
// default; Open names it so, to put userSystem in it.
const systemAccount = server.DEFAULT_SYSTEM_ACCOUNT

// withSystemUser adds userSystem, with password, to opts: in the system
// account, in process only.
func withSystemUser(opts *server.Options, password string) {
	sys := server.NewAccount(systemAccount)
	opts.Accounts = append(opts.Accounts, sys)
	opts.SystemAccount = systemAccount
	opts.Users = append(opts.Users, &server.User{
		Username:               userSystem,
		Password:               password,
		Account:                sys,
		AllowedConnectionTypes: map[string]struct{}{jwt.ConnectionTypeInProcess: {}},
	})
}

// Errors ForgetPeer returns besides ErrNoJetStream.
var (
	// ErrForgetSelf: a server cannot remove itself from the peer sets.
	ErrForgetSelf = errors.New("bus: a server cannot forget itself")
	// ErrNotPeer: the name is not a server of JetStream's metadata group
	// (never was, or was forgotten already).
	ErrNotPeer = errors.New("bus: no server of that name in JetStream's peer set")
	// ErrPeerChangeInFlight: JetStream is still applying another change
	// of its peer set; try again in a moment.
	ErrPeerChangeInFlight = errors.New("bus: JetStream is still applying another peer change")
	// ErrNoMetaLeader: no metadata leader answered, as when too few of
	// the cluster's servers run to elect one, or a leader without a
	// quorum could not commit the removal in time.
	ErrNoMetaLeader = errors.New("bus: no JetStream metadata leader answered")
)

// ForgetPeer removes the server named name (its Config.Name) from the
// embedded JetStream's peer sets for good, as `nats server raft
// peer-remove` does on a NATS cluster: its metadata group no longer
// counts it towards a majority, and each stream it held a copy of is given
// another server's, when there is one that holds none yet (else it keeps
// one copy fewer until a server joins). It returns once the metadata group
// has agreed on the removal, or when ctx ends.
//
// It is for a server that is gone for good. One still running that
// applies the removal stops its JetStream. One started again under the
// name is refused by the servers that applied the removal for 5 minutes
// after it (nats-server's peerRemoveTimeout, in memory: a server that
// joined since, or restarted, does not know it), and taken back as a new
// peer after that: a replacement needs a new name. When ctx ends before
// the answer, the removal may still be committed: asking again then
// fails with ErrNotPeer. A server cannot forget itself (ErrForgetSelf).
// Only an embedded server with JetStream in a cluster can forget
// (ErrNoJetStream otherwise).
func (b *Bus) ForgetPeer(ctx context.Context, name string) error {
	if b.server == nil || !b.cfg.JetStream || b.cfg.Cluster == "" {
		return ErrNoJetStream
	}
	if name == b.cfg.Name {
		return ErrForgetSelf
	}
	nc, err := b.connect(b.cfg.Name+" forget", userSystem, b.sysPassword)
	if err != nil {
		return fmt.Errorf("bus: connecting as the system user: %w", err)
	}
	defer nc.Close()
	req, err := json.Marshal(server.JSApiMetaServerRemoveRequest{Server: name})
	if err != nil {
		return fmt.Errorf("bus: encoding the removal of %s: %w", name, err)
	}
	// Only the metadata leader subscribes to the request (no responders
	// without one), and it answers once the group has committed the
	// removal.
	msg, err := nc.RequestWithContext(ctx, server.JSApiRemoveServer, req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) {
			return fmt.Errorf("forgetting %s: %w (is a majority of the servers it knows running?)", name, ErrNoMetaLeader)
		}
		return fmt.Errorf("bus: asking JetStream to forget %s: %w", name, err)
	}
	var resp server.JSApiMetaServerRemoveResponse
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return fmt.Errorf("bus: JetStream's answer to forgetting %s: %w", name, err)
	}
	switch {
	case resp.Error != nil && server.IsNatsErr(resp.Error, server.JSClusterServerNotMemberErr):
		return fmt.Errorf("forgetting %s: %w (the servers it counts, by their NATS names: %v)", name, ErrNotPeer, b.metaPeers())
	case resp.Error != nil && server.IsNatsErr(resp.Error, server.JSClusterServerMemberChangeInflightErr):
		return fmt.Errorf("forgetting %s: %w", name, ErrPeerChangeInFlight)
	case resp.Error != nil:
		return fmt.Errorf("bus: JetStream refused to forget %s: %s", name, resp.Error.Description)
	case !resp.Success:
		return fmt.Errorf("bus: JetStream did not say it forgot %s", name)
	}
	return nil
}

// metaPeers names the servers of the embedded JetStream's metadata group
// this server knows of, itself included, sorted.
func (b *Bus) metaPeers() []string {
	jsi, err := b.server.Jsz(&server.JSzOptions{Limit: 1})
	if err != nil || jsi.Meta == nil {
		return nil
	}
	names := []string{b.cfg.Name}
	for _, p := range jsi.Meta.Replicas {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	return slices.Compact(names)
}
