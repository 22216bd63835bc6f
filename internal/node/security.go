package node

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/internal/bus"
	"github.com/switchboard/switchboard/internal/pki"
	"github.com/switchboard/switchboard/internal/token"
	"github.com/switchboard/switchboard/internal/web"
	"github.com/switchboard/switchboard/wire"
)

// minAdminSecret is the shortest admin secret accepted, in bytes.
const minAdminSecret = 16

// security is what a node proves and checks, loaded by New from the
// files Config names. Which of them are on is settled then; Reload
// reads the files again.
type security struct {
	// tls serves the client listener (and HTTP with HTTPTLS); nil: plain.
	tls *tls.Config
	// cert is the certificate tls serves; nil without TLS.
	cert *pki.KeyPair
	// tokens verifies attach tokens; it holds nil when users are
	// unauthenticated (no Config.TokenKey).
	tokens atomic.Pointer[token.Verifier]
	// admin holds the bearer secret of state-changing HTTP; nil
	// (no Config.AdminToken): loopback only.
	admin atomic.Pointer[[]byte]
}

// loadSecurity reads the certificate, token key and admin secret cfg
// names.
func loadSecurity(cfg *Config) (*security, error) {
	var sec security
	var errs []error
	switch {
	case cfg.TLSCert != "" && cfg.TLSKey != "":
		kp, err := pki.LoadKeyPair(cfg.TLSCert, cfg.TLSKey, func(pair *tls.Certificate) error {
			if pair.Leaf != nil {
				if err := pair.Leaf.VerifyHostname(cfg.Service); err != nil {
					return fmt.Errorf("TLS certificate %s does not name the service %q, which clients verify: %w", cfg.TLSCert, cfg.Service, err)
				}
			}
			pair.Certificate = servedChain(pair.Certificate)
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("TLS certificate: %w", err))
			break
		}
		sec.cert = kp
		// The pair is read at each handshake from kp, which Reload renews.
		sec.tls = &tls.Config{GetCertificate: kp.GetCertificate, MinVersion: tls.VersionTLS12}
		if cfg.ClusterSecret != "" {
			sec.tls.SetSessionTicketKeys(ticketKeys(cfg.ClusterSecret, cfg.Service, time.Now()))
			sec.tls.GetConfigForClient = noTLS12Tickets(sec.tls)
		}
	case cfg.TLSCert != "" || cfg.TLSKey != "":
		errs = append(errs, errors.New("TLS needs both a certificate and its key (tls-cert, tls-key)"))
	}
	if cfg.HTTPTLS && cfg.TLSCert == "" {
		errs = append(errs, errors.New("HTTPS (http-tls) needs a TLS certificate (tls-cert, tls-key)"))
	}
	if cfg.TokenKey != "" {
		if v, err := loadTokenKeys(cfg); err != nil {
			errs = append(errs, err)
		} else {
			sec.tokens.Store(v)
		}
	}
	if cfg.AdminToken != "" {
		if secret, err := loadAdminSecret(cfg); err != nil {
			errs = append(errs, err)
		} else {
			sec.admin.Store(&secret)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("node: invalid security settings: %w", err)
	}
	return &sec, nil
}

// loadTokenKeys reads the token keys (every public key in
// Config.TokenKey's file).
func loadTokenKeys(cfg *Config) (*token.Verifier, error) {
	keys, err := pki.LoadVerifyKeys(cfg.TokenKey)
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	for _, want := range cfg.RequiredTokenKeys {
		if !slices.ContainsFunc(keys, func(k ed25519.PublicKey) bool { return want.Equal(k) }) {
			return nil, fmt.Errorf("token key %s: %w", cfg.TokenKey, ErrRequiredTokenKeyMissing)
		}
	}
	v, err := token.NewKeySetVerifier(keys, cfg.Service)
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	return v, nil
}

// loadAdminSecret reads the admin secret (Config.AdminToken).
func loadAdminSecret(cfg *Config) ([]byte, error) {
	data, err := os.ReadFile(cfg.AdminToken)
	switch {
	case err != nil:
		return nil, fmt.Errorf("admin token: %w", err)
	case len(bytes.TrimSpace(data)) < minAdminSecret:
		return nil, fmt.Errorf("admin token %s: the secret is shorter than %d bytes", cfg.AdminToken, minAdminSecret)
	case isPEM(data):
		return nil, fmt.Errorf("admin token %s: holds a PEM block (a certificate or key, which may be public), not a secret: make one with openssl rand -hex 32", cfg.AdminToken)
	}
	return bytes.TrimSpace(data), nil
}

// adminSecret is the admin secret now; nil without one.
func (sec *security) adminSecret() []byte {
	if p := sec.admin.Load(); p != nil {
		return *p
	}
	return nil
}

// adminOption gives web the admin secret: reloaded from its file by
// Reload when the node has one, loopback only when it has none.
func (n *Node) adminOption() web.Option {
	if n.sec.admin.Load() == nil {
		return web.WithAdminToken(nil)
	}
	return web.WithAdminTokenSource(n.sec.adminSecret)
}

// servedChain is the chain a node sends in its TLS handshakes: the
// certificate file's, without the self-signed roots after the leaf. A
// client can only verify the chain against a root it trusts already, so
// a root on the wire is bytes in every full handshake and, in Go's
// verifier, a second check of the leaf's signature (through the root as
// an intermediate): about half the client's verification time. Leaf and
// intermediates stay. Certificates that do not parse are kept as they
// are; tls.LoadX509KeyPair has checked the leaf.
func servedChain(chain [][]byte) [][]byte {
	out := chain[:min(len(chain), 1):min(len(chain), 1)]
	for _, der := range chain[min(len(chain), 1):] {
		c, err := x509.ParseCertificate(der)
		if err == nil && bytes.Equal(c.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(c) == nil {
			continue
		}
		out = append(out, der)
	}
	return out
}

// ticketKeyPeriod is how long one TLS session ticket key is the newest.
const ticketKeyPeriod = 24 * time.Hour

// ticketKeys derives the keys of TLS session tickets from the cluster's
// secret, the same on every node of the service at the same time. A client
// whose hello went to one node then resumes its TLS session at the node it
// picked (the service name is the same): one full handshake per dial
// instead of two. The key of the current period comes first and seals new
// tickets; the previous period's still opens the tickets it sealed. A
// ticket never outlives two periods. Tickets are issued in TLS 1.3 only
// (noTLS12Tickets), where every resumption runs a fresh key exchange, so
// the secret does not open recorded sessions; whoever holds it could open
// a client's ticket and pose as the service to that client when it
// returns: the same who could join the cluster.
func ticketKeys(secret, service string, now time.Time) [][32]byte {
	period := now.Unix() / int64(ticketKeyPeriod/time.Second)
	keys := make([][32]byte, 2)
	for i := range keys {
		mac := hmac.New(sha256.New, []byte(secret))
		fmt.Fprintf(mac, "switchboard tls session ticket v1\x00%s\x00%d", service, period-int64(i))
		copy(keys[i][:], mac.Sum(nil))
	}
	return keys
}

// noTLS12Tickets is the GetConfigForClient of a listener whose ticket keys
// are derived from the cluster secret (ticketKeys): a client that does
// not offer TLS 1.3 gets a copy of base without session tickets. A TLS
// 1.2 ticket seals the session's master secret, and a resumption runs no
// fresh key exchange, so whoever holds the cluster secret (which derives
// every day's key) could open a recorded ticket and decrypt the session
// and its resumptions. TLS 1.3 clients keep base and its tickets: a
// resumption there runs a fresh exchange.
func noTLS12Tickets(base *tls.Config) func(*tls.ClientHelloInfo) (*tls.Config, error) {
	// Copied once: without tickets it needs no keys, so rotateTicketKeys
	// need not reach it.
	noTickets := base.Clone()
	noTickets.SessionTicketsDisabled = true
	return func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if slices.Contains(hello.SupportedVersions, tls.VersionTLS13) {
			return nil, nil
		}
		return noTickets, nil
	}
}

// rotateTicketKeys sets the session ticket keys again every hour, so that
// every node moves to the next period's key within the hour it begins.
func (n *Node) rotateTicketKeys() {
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case now := <-tick.C:
			n.sec.tls.SetSessionTicketKeys(ticketKeys(n.cfg.ClusterSecret, n.cfg.Service, now))
		}
	}
}

// ErrRequiredTokenKeyMissing: the token key file lacks one of
// Config.RequiredTokenKeys.
var ErrRequiredTokenKeyMissing = errors.New("the file lacks a key whose tokens must be accepted (the SIP front's --sip-token-signer)")

// ErrNotStarted is returned by calls that need a started node.
var ErrNotStarted = errors.New("node: not started")

// ServedCertificate returns the certificate the client listener serves
// now, which Reload renews; nil without TLS.
func (n *Node) ServedCertificate() *x509.Certificate {
	if n.sec.cert == nil {
		return nil
	}
	return n.sec.cert.Current().Leaf // parsed as the pair is loaded
}

// NoteReload records the outcome of a reload the caller asked for (serve's
// SIGHUP: Reload, and the settings it reads again itself): ok when
// nothing was refused. It shows in switchboard_reload_successful and
// switchboard_reloads_total, where an alert or a renewal hook can see a
// refusal that only the log said before. Before Start it records nothing.
func (n *Node) NoteReload(ok bool) {
	if n.metrics == nil {
		return
	}
	result := "ok"
	if !ok {
		result = "failed"
	}
	n.metrics.reloads.WithLabelValues(result).Inc()
	if ok {
		n.metrics.reloadOK.Set(1)
	} else {
		n.metrics.reloadOK.Set(0)
	}
}

// Reload reads the node's credentials again from the files Config names:
// the client listener's certificate (Config.TLSCert, TLSKey, which HTTPS
// shares), the routes' (ClusterCert, ClusterKey), the token keys
// (TokenKey: every public key in the file) and the admin secret
// (AdminToken). A renewed certificate is served from the next handshake
// on, connections already made keep theirs; new keys and secrets check
// the next attach or request, sessions already attached stay. What was
// off at start stays off. A file that does not load, a certificate that
// does not name the service or is not valid now, a cluster certificate
// that the cluster CA does not verify for server and client
// authentication (bus's routeTLS), is refused and logged, and what was
// in use stays; the error names each. The CAs are read at start only.
// serve calls it on SIGHUP.
func (n *Node) Reload() error {
	now := time.Now()
	var errs []error
	refused := func(what, file string, err error) {
		n.log.Error("reloading "+what+": keeping the one in use", "file", file, "err", err)
		errs = append(errs, fmt.Errorf("node: reloading %s: %w", what, err))
	}
	type certFile struct {
		what, file string
		kp         *pki.KeyPair // nil: no TLS there
	}
	certs := []certFile{{"the TLS certificate", n.cfg.TLSCert, n.sec.cert}}
	if n.cfg.ClusterCert != "" {
		if n.bus == nil {
			return ErrNotStarted
		}
		certs = append(certs, certFile{"the cluster certificate", n.cfg.ClusterCert, n.bus.RouteKeyPair()})
	}
	for _, c := range certs {
		if c.kp == nil {
			continue
		}
		switch changed, err := c.kp.Reload(now); {
		case err != nil:
			refused(c.what, c.file, err)
		case changed:
			n.log.Info("reloaded "+c.what, "file", c.file, "not_after", c.kp.Current().Leaf.NotAfter)
		default:
			n.log.Info(c.what+" is unchanged", "file", c.file)
		}
	}
	if n.sec.tokens.Load() != nil {
		if v, err := loadTokenKeys(&n.cfg); err != nil {
			refused("the token keys", n.cfg.TokenKey, err)
		} else {
			n.sec.tokens.Store(v)
			n.log.Info("reloaded the token keys", "file", n.cfg.TokenKey, "keys", v.Keys())
		}
	}
	if old := n.sec.adminSecret(); old != nil {
		if secret, err := loadAdminSecret(&n.cfg); err != nil {
			refused("the admin token", n.cfg.AdminToken, err)
		} else {
			n.sec.admin.Store(&secret)
			n.log.Info("reloaded the admin token", "file", n.cfg.AdminToken, "changed", !bytes.Equal(old, secret))
		}
	}
	return errors.Join(errs...)
}

// logPosture says plainly, once at start, what is not protected.
func (n *Node) logPosture() {
	if n.sec.tls == nil {
		n.log.Warn("clients connect over plain TCP: they cannot verify this node, and a forged directory entry could send them elsewhere; set --tls-cert and --tls-key")
	}
	if n.sec.tokens.Load() == nil {
		n.log.Warn("users are unauthenticated: anyone may attach under any user name; set --token-key to require signed tokens")
	}
	if n.sec.admin.Load() == nil && n.cfg.HTTP != "" {
		n.log.Warn("admin HTTP (POST/DELETE /v1/drain, POST /v1/forget) has no credential: only loopback clients that are not web pages may use it; set --admin-token")
	}
	if n.cfg.HTTP != "" && !n.cfg.HTTPTLS {
		n.log.Info("HTTP is plain: read-only endpoints are open, and an admin token would travel in clear; bind --http to a private address or set --http-tls")
	}
	if n.cfg.Bus != "" {
		n.logExternalBusPosture()
	}
	if n.dnsAddr != "" {
		if host, _, err := net.SplitHostPort(n.addr); err == nil && net.ParseIP(host) == nil {
			n.log.Warn("the DNS responder lists this node under a host name it does not answer for: clients that ask it (connect --resolver) find no address for this node; advertise an IP address (--advertise) or make the name resolvable where the clients look", "advertise", n.addr)
		}
	}
	now := time.Now()
	if n.sec.cert != nil {
		if err := n.sec.cert.ValidAt(now); err != nil {
			n.log.Error("the TLS certificate is not valid now: clients will refuse this node until a valid one is loaded (SIGHUP)", "err", err)
		}
	}
	if n.cfg.ClusterCert != "" && n.bus != nil {
		if kp := n.bus.RouteKeyPair(); kp != nil {
			if err := kp.ValidAt(now); err != nil {
				n.log.Error("the cluster certificate is not valid now: peers will refuse the routes until a valid one is loaded (SIGHUP)", "err", err)
			}
		}
	}
	if len(n.cfg.ProxyProtocolFrom) > 0 {
		n.log.Info("the client and HTTP listeners believe the PROXY protocol header of these balancers only, and require it of them: keep them the only hosts in that range", "proxy_protocol_from", n.cfg.ProxyProtocolFrom.String())
	}
}

// logExternalBusPosture says what an external bus (--bus) leaves to its
// operator: the embedded server's per-node permissions are not there,
// and the node cannot tell from its own settings whether the link is
// encrypted or authenticated.
func (n *Node) logExternalBusPosture() {
	plain, anonymous := false, n.cfg.BusCreds == "" && n.cfg.BusCert == ""
	for _, u := range strings.Split(n.cfg.Bus, ",") {
		pu, err := url.Parse(strings.TrimSpace(u))
		if err != nil {
			continue
		}
		if pu.Scheme != "tls" && pu.Scheme != "wss" && n.cfg.BusCA == "" && n.cfg.BusCert == "" {
			plain = true
		}
		if pu.User != nil {
			anonymous = false
		}
	}
	if plain {
		n.log.Warn("the external bus is named nats:// with no --bus-ca: unless that server requires TLS, room text and directory entries cross the network in clear and the node cannot verify the server; use tls:// and --bus-ca", "bus", bus.RedactURLs(n.cfg.Bus))
	}
	if anonymous {
		n.log.Warn("the node presents no credentials to the external bus (no user in --bus, no --bus-creds or --bus-cert): unless that server requires them, anyone who reaches it reads every room and publishes directory entries")
	}
	n.log.Info("on an external bus, a node's directory entry is only as safe as the bus's permissions: give each node a user that may publish only its own entry (docs/security.md)")
}

// checkToken verifies an attach's token: the user it names, and the
// rooms that user may join (nil: any). Without a token key the user is
// the one attach names and every room is allowed.
func (s *session) checkToken(m wire.Message) (user string, rooms []string, werr *wire.Error) {
	v := s.n.sec.tokens.Load()
	if v == nil {
		return m.User, nil, nil
	}
	if m.Token == "" {
		return "", nil, wire.Errorf(wire.CodeUnauthorized, "this service requires a token: attach with \"token\"")
	}
	c, err := v.Verify(m.Token, time.Now())
	if err != nil {
		var why string
		switch {
		case errors.Is(err, token.ErrExpired):
			why = "the token has expired"
		case errors.Is(err, token.ErrNotYetValid):
			why = "the token is not valid yet"
		case errors.Is(err, token.ErrSignature):
			why = "the token is not signed by this service's key"
		case errors.Is(err, token.ErrAudience):
			why = "the token is for another service, or names none (aud)"
		case errors.Is(err, token.ErrClaims):
			why = "the token lacks a valid user or expiry, or its rooms claim is malformed"
		default:
			why = "the token is malformed"
		}
		return "", nil, wire.Errorf(wire.CodeUnauthorized, "%s", why)
	}
	if m.User != "" && m.User != c.User {
		return "", nil, wire.Errorf(wire.CodeUnauthorized, "the token names another user than %q", wire.Clip(m.User, MaxUserName))
	}
	return c.User, c.Rooms, nil
}

// mayJoin reports whether the session's token lets it join room.
func (s *session) mayJoin(room string) bool {
	return len(s.allowed) == 0 || slices.Contains(s.allowed, room)
}
