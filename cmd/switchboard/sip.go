package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/pki"
	"github.com/switchboard/switchboard/internal/sipfront"
)

// sipSettings are serve's flags for the SIP and RTP front (docs/rtp.md).
type sipSettings struct {
	listen         string
	open           bool
	redirect       bool
	tokenSigner    string
	signer         ed25519.PrivateKey // tokenSigner's key, read by validate
	maxCalls       int
	maxCallsPerSrc int
	maxUnconfirmed int
	ackGrace       time.Duration
	maxConns       int
	maxConnsPerSrc int
	connIdle       time.Duration
	rtpAnyAddress  bool
}

// register adds the front's flags to serve's command line.
func (s *sipSettings) register(fs *flag.FlagSet) {
	fs.StringVar(&s.listen, "sip", "", "SIP front HOST:PORT (UDP and TCP) answering sip:ROOM@SERVICE with real-time text over RTP, docs/rtp.md (empty: off)")
	fs.BoolVar(&s.open, "sip-open", false, "let --sip listen on an address other than loopback: SIP callers are not authenticated, anyone who reaches it joins any room")
	fs.BoolVar(&s.redirect, "sip-redirect", true, "answer 302 to the node the pick policy chooses (every node must run its SIP front on the same port)")
	fs.StringVar(&s.tokenSigner, "sip-token-signer", "", "Ed25519 private key (PEM) that signs the tokens of bridged callers; needed with --token-key")
	intFlag(fs, &s.maxCalls, "sip-max-calls", 0, -1, "most calls the SIP front holds at once (default 100)")
	intFlag(fs, &s.maxCallsPerSrc, "sip-max-calls-per-source", 0, -1, "most calls from one source address (default 4)")
	intFlag(fs, &s.maxUnconfirmed, "sip-max-unconfirmed", 0, -1, "most calls not yet confirmed by an ACK (being set up, or answered 200 and not acknowledged) held at once (default a quarter of --sip-max-calls, at least 1)")
	durationFlag(fs, &s.ackGrace, "sip-ack-grace", 100*time.Millisecond, 32*time.Second, "how long an answered call waits for its ACK before it gives its place up to a new call that finds a limit reached (default 2s)")
	intFlag(fs, &s.maxConns, "sip-max-conns", 0, -1, "most TCP connections the SIP front holds at once (default 256)")
	intFlag(fs, &s.maxConnsPerSrc, "sip-max-conns-per-source", 0, -1, "most SIP TCP connections from one source address, an IPv6 /64 counting as one (default 16)")
	durationFlag(fs, &s.connIdle, "sip-conn-idle", time.Second, 0, "close a SIP TCP connection that sends nothing for this long (default 2m)")
	fs.BoolVar(&s.rtpAnyAddress, "sip-rtp-any-address", false, "let a caller's SDP name any address for its RTP, not only the address its SIP request came from: anyone who reaches --sip can then aim the node's RTP at any host (for callers behind a SIP proxy that does not relay media; docs/security.md)")
}

// validate rejects a front that would be open to strangers unasked, or
// unable to attach its callers.
func (s *sipSettings) validate(cfg *node.Config) error {
	if s.listen == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(s.listen)
	if err != nil {
		return usagef("serve", "serve: --sip %q: %v", s.listen, err)
	}
	ip, err := netip.ParseAddr(host)
	loopback := err == nil && ip.IsLoopback() || host == "localhost"
	if !loopback && !s.open {
		return usagef("serve", "serve: --sip %s is reachable from other hosts and SIP callers are not authenticated; add --sip-open to say so, or listen on loopback", s.listen)
	}
	if cfg.TokenKey != "" && s.tokenSigner == "" {
		return usagef("serve", "serve: --sip with --token-key needs --sip-token-signer, the private key whose tokens the node accepts")
	}
	if s.tokenSigner == "" {
		return nil
	}
	// Read now, so that serve --check finds what start would: a key that
	// does not load, or one whose tokens the node would refuse, which
	// would leave every caller unable to join.
	key, err := pki.LoadSigningKey(s.tokenSigner)
	if err != nil {
		return fmt.Errorf("serve: --sip-token-signer: %w", err)
	}
	s.signer = key
	// The node keeps to it: a reload of a token key file without it is
	// refused (the signer itself is read at start only).
	cfg.RequiredTokenKeys = []ed25519.PublicKey{key.Public().(ed25519.PublicKey)}
	if cfg.TokenKey != "" {
		keys, err := pki.LoadVerifyKeys(cfg.TokenKey)
		if err != nil {
			return fmt.Errorf("serve: --token-key: %w", err)
		}
		pub := key.Public().(ed25519.PublicKey)
		if !slices.ContainsFunc(keys, func(k ed25519.PublicKey) bool { return pub.Equal(k) }) {
			return fmt.Errorf("serve: --sip-token-signer %s is not the private half of any key in --token-key %s: the node would refuse every caller's token", s.tokenSigner, cfg.TokenKey)
		}
	}
	node.WarnIfReadable(cfg.Logger, "sip-token-signer", s.tokenSigner)
	return nil
}

// start runs the front for n; the function returned stops it.
func (s *sipSettings) start(n *node.Node, cfg node.Config, logger *slog.Logger, stdout io.Writer) (func(context.Context), error) {
	if s.listen == "" {
		return func(context.Context) {}, nil
	}
	fc := sipfront.Config{
		Service:             n.Service(),
		NodeID:              n.ID(),
		NodeAddr:            n.LocalAddr(),
		Nodes:               n.Nodes,
		Redirect:            s.redirect,
		MaxCalls:            s.maxCalls,
		MaxCallsPerSource:   s.maxCallsPerSrc,
		MaxUnconfirmedCalls: s.maxUnconfirmed,
		AckGrace:            s.ackGrace,
		MaxConns:            s.maxConns,
		MaxConnsPerSource:   s.maxConnsPerSrc,
		ConnIdleTimeout:     s.connIdle,
		RTPAnyAddress:       s.rtpAnyAddress,
		Metrics:             n.Registry(),
		Logger:              logger.With("part", "sip"),
	}
	if s.signer != nil {
		fc.TokenKey = s.signer
		// Said once at start, plainly: this key is not the public half
		// the other settings hold.
		logger.Warn("the SIP front holds a token signing key: whoever takes this node can mint a token for any user and room (docs/security.md)", "sip-token-signer", s.tokenSigner)
	}
	if cfg.TLSCert != "" {
		fc.ClientOptions = append(fc.ClientOptions, client.WithTLS(ownNodeTLS(n)), client.WithServiceName(n.Service()))
	}
	front, err := sipfront.Listen(s.listen, fc)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	go func() {
		if err := front.Serve(); err != nil && !errors.Is(err, sipfront.ErrClosed) {
			logger.Error("the SIP front stopped", "err", err)
		}
	}()
	logger.Warn("SIP front open: callers are not authenticated; anyone who reaches it joins any room as sip:USER@HOST",
		"sip", front.Addr().String(), "loopback_only", front.Addr().Addr().IsLoopback())
	if s.rtpAnyAddress {
		// Said at every start, as the other open doors are.
		logger.Warn("the SIP front sends RTP wherever a caller's SDP says (sip-rtp-any-address): anyone who reaches it can aim the node's UDP at a third party or at a host only the node reaches (docs/security.md)",
			"sip", front.Addr().String())
	}
	fmt.Fprintf(stdout, "switchboard: SIP front on %s (udp and tcp): call sip:ROOM@%s\n", front.Addr(), n.Service())
	return func(ctx context.Context) {
		if err := front.Shutdown(ctx); err != nil {
			logger.Warn("stopping the SIP front", "err", err)
		}
	}, nil
}
