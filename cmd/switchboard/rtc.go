package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/rtcfront"
)

// rtcSettings are serve's flags for the WebRTC front (docs/rtp.md).
type rtcSettings struct {
	listen         string
	maxPeers       int
	maxPeersPerSrc int
}

// register adds the front's flags to serve's command line.
func (s *rtcSettings) register(fs *flag.FlagSet) {
	fs.StringVar(&s.listen, "rtc", "", "WebRTC front: the UDP HOST:PORT every peer's ICE runs on; peers POST their SDP offer to /v1/rtc on --http and type in a T.140 data channel (RFC 8865), docs/rtp.md (empty: off)")
	intFlag(fs, &s.maxPeers, "rtc-max-peers", 0, -1, "most WebRTC peers the front holds at once (default 100)")
	intFlag(fs, &s.maxPeersPerSrc, "rtc-max-peers-per-source", 0, -1, "most WebRTC peers from one source address (default 4)")
}

// validate rejects a front that could not be reached.
func (s *rtcSettings) validate(cfg *node.Config) error {
	if s.listen == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(s.listen)
	if err != nil {
		return usagef("serve", "serve: --rtc %q: %v", s.listen, err)
	}
	if _, err := netip.ParseAddr(host); err != nil && host != "" {
		return usagef("serve", "serve: --rtc %q: the host must be an IP address (the one offered to peers as the ICE candidate)", s.listen)
	}
	if cfg.HTTP == "" {
		return usagef("serve", "serve: --rtc needs --http: peers send their offers to POST /v1/rtc there")
	}
	return nil
}

// start runs the front for n, mounted on its HTTP; the function returned
// stops it.
func (s *rtcSettings) start(n *node.Node, cfg node.Config, logger *slog.Logger, stdout io.Writer) (func(context.Context), error) {
	if s.listen == "" {
		return func(context.Context) {}, nil
	}
	fc := rtcfront.Config{
		Service:           n.Service(),
		NodeID:            n.ID(),
		NodeAddr:          n.LocalAddr(),
		ICEAddr:           s.listen,
		MaxPeers:          s.maxPeers,
		MaxPeersPerSource: s.maxPeersPerSrc,
		TrustedProxies:    cfg.TrustedProxies,
		Directory:         n.Directory,
		Origins:           cfg.WSOrigins,
		Logger:            logger.With("part", "rtc"),
	}
	if cfg.TLSCert != "" {
		fc.ClientOptions = append(fc.ClientOptions, client.WithTLS(ownNodeTLS(n)), client.WithServiceName(n.Service()))
	}
	front, err := rtcfront.New(fc)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	n.HandleHTTP(rtcfront.Path, front)
	if cfg.TokenKey == "" {
		logger.Warn("WebRTC front open: users are not authenticated (no --token-key); anyone who reaches the HTTP listener joins any room under any name, as on the client listener",
			"rtc", front.Addr().String(), "http", n.HTTPAddr())
	} else {
		logger.Info("WebRTC front: peers present a user token (Authorization: Bearer)", "rtc", front.Addr().String(), "http", n.HTTPAddr())
	}
	scheme := "http"
	if cfg.HTTPTLS {
		scheme = "https"
	}
	fmt.Fprintf(stdout, "switchboard: WebRTC front on %s (ICE over udp): POST offers to %s://%s%s?room=ROOM\n", front.Addr(), scheme, n.HTTPAddr(), rtcfront.Path)
	return func(ctx context.Context) {
		if err := front.Shutdown(ctx); err != nil {
			logger.Warn("stopping the WebRTC front", "err", err)
		}
	}, nil
}
