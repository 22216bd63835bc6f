package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

// disconnectSubject is where a NATS server announces, to its system
// account, every client connection that closed, for every account.
const disconnectSubject = "$SYS.ACCOUNT.*.DISCONNECT"

// serverPing is a request every server answers in the system account
// alone.
const serverPing = "$SYS.REQ.SERVER.PING"

// ErrNotSystem: the user of Config.ExternalSystem is not in the external
// NATS's system account, so it would hear no disconnect events.
var ErrNotSystem = errors.New("bus: the --bus-system user is not in the external NATS's system account")

// ErrNoSystem: WatchDisconnects needs Config.ExternalSystem.
var ErrNoSystem = errors.New("bus: watching disconnects needs a user of the external NATS's system account (Config.ExternalSystem)")

// disconnectEvent is the part of nats-server's DisconnectEventMsg the
// watch reads: which server had the connection, and its client ID there.
type disconnectEvent struct {
	Server struct {
		ID string `json:"id"`
	} `json:"server"`
	Client struct {
		ID uint64 `json:"id"`
	} `json:"client"`
}

// maxDisconnectEvent is the largest disconnect event decoded, in bytes.
const maxDisconnectEvent = 64 << 10

// ConnName names nc's connection as the servers report it in their
// events: "SERVER_ID/CLIENT_ID", or "" while it is not connected.
func ConnName(nc *nats.Conn) string {
	if nc == nil || !nc.IsConnected() {
		return ""
	}
	cid, err := nc.GetClientID()
	if err != nil {
		return ""
	}
	sid := nc.ConnectedServerId()
	if sid == "" {
		return ""
	}
	return sid + "/" + strconv.FormatUint(cid, 10)
}

// DirConn is ConnName of the directory connection on an external NATS,
// "" on the embedded server (whose connections die with the node).
func (b *Bus) DirConn() string {
	if b.server != nil {
		return ""
	}
	return ConnName(b.Dir)
}

// WatchDisconnects connects to the external NATS as Config.ExternalSystem
// (a user of its system account) and calls closed, from the connection's
// delivery goroutine, with ConnName of every client connection that any
// server of the cluster (or supercluster) reports closed. Close stops it.
// It returns ErrNoSystem without Config.ExternalSystem.
func (b *Bus) WatchDisconnects(closed func(conn string)) error {
	if b.cfg.External == "" || b.cfg.ExternalSystem == "" {
		return ErrNoSystem
	}
	log := b.cfg.Logger
	opts := append(append([]nats.Option{
		nats.Name(b.cfg.Name + "-watch"),
		nats.MaxReconnects(-1),
		reconnectBackoff(),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn("NATS connection error", "conn", "watch", "err", err)
		}),
	}, staleDetection()...), b.systemOpts...)
	nc, err := nats.Connect(b.cfg.ExternalSystem, opts...)
	if err != nil {
		return fmt.Errorf("bus: connecting to the external NATS's system account: %w", withoutURL(err))
	}
	// Any account may subscribe to the subject, but only the system
	// account hears the events: a user elsewhere would watch in vain.
	// Only the system account gets an answer to a server ping.
	if _, err := nc.Request(serverPing, nil, 5*time.Second); err != nil {
		nc.Close()
		return fmt.Errorf("%w: %s got no answer to %s (%v)", ErrNotSystem, RedactURLs(b.cfg.ExternalSystem), serverPing, err)
	}
	_, err = nc.Subscribe(disconnectSubject, func(m *nats.Msg) {
		if len(m.Data) > maxDisconnectEvent {
			return
		}
		var ev disconnectEvent
		if json.Unmarshal(m.Data, &ev) != nil || ev.Server.ID == "" || ev.Client.ID == 0 {
			return
		}
		closed(ev.Server.ID + "/" + strconv.FormatUint(ev.Client.ID, 10))
	})
	if err == nil {
		err = nc.Flush()
	}
	if err == nil {
		err = nc.LastError()
	}
	if err != nil {
		nc.Close()
		return fmt.Errorf("bus: subscribing to %s (is the user in the system account?): %w", disconnectSubject, err)
	}
	b.watch = nc
	return nil
}
