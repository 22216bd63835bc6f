package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/switchboard/switchboard/internal/bus"
	"github.com/switchboard/switchboard/internal/config"
	"github.com/switchboard/switchboard/internal/dnsserver"
	"github.com/switchboard/switchboard/internal/forwarded"
	"github.com/switchboard/switchboard/internal/node"
)

// serveOnly are serve's flags that the config file may not set.
var serveOnly = []string{"config", "check"}

// zeroMeans are serve's numbers and durations whose 0 means something of
// its own, which their help says: every other refuses 0, which the node
// would take for its default, so that a capacity of 0 (or one lowered to
// 0 at a SIGHUP) never opens the node to the default's 10,000 sessions,
// and --check never shows a value other than the one in force.
var zeroMeans = []string{
	"replicas",            // chosen from the size of the cluster
	"room-retention",      // keep rooms for ever
	"rebalance-threshold", // never rebalance
	"drain-grace",         // stop at once
}

// serveSettings is what serve's flags, environment twins and config file
// make: the node's configuration and the command's own settings.
type serveSettings struct {
	cfg        node.Config
	log        logFlags
	configPath string
	check      bool
	join       string
	wsOrigins  string
	sip        sipSettings
	rtc        rtcSettings
	// drainGrace is how long a node stopped by SIGTERM or SIGINT spends
	// moving its sessions to other nodes before it shuts down.
	drainGrace time.Duration
}

// defaultDrainGrace is serve's --drain-grace: it leaves the shutdown
// after it 10 s of the 30 s Kubernetes waits after SIGTERM by default
// (terminationGracePeriodSeconds) before it kills, and 20 s of the 40 s
// of docs/deploy.md's unit.
const defaultDrainGrace = 20 * time.Second

// serveCmdline registers every serve flag on a fresh command line.
func serveCmdline(s *serveSettings, stdout, stderr io.Writer) *cmdline {
	s.cfg = node.DefaultConfig()
	// The node fills these itself; show the real defaults.
	s.cfg.MaxLine, s.cfg.MaxQueue = 64<<10, 1<<20
	s.cfg.DNSRateLimit, s.cfg.DNSMaxTCP = dnsserver.DefaultRateLimit, dnsserver.DefaultMaxTCPConns
	cfg := &s.cfg
	c := newCmdline("serve", "[flags]",
		"Runs one node of a service. Settings come from the command line, then the\n"+
			"environment, then the --config file (a flat TOML file whose keys are the flag\n"+
			"names; docs/switchboard.example.toml), then the defaults below. With --check,\n"+
			"serve validates them all, prints where each came from, and exits.", stdout, stderr)
	c.file = true
	fs := c.fs
	fs.StringVar(&s.configPath, "config", "", "settings file (TOML, keys named as these flags)")
	fs.BoolVar(&s.check, "check", false, "validate the settings, print them with their sources, and exit (0 valid, 1 not)")

	fs.StringVar(&cfg.Service, "service", cfg.Service, "the service's common name, shared by every node")
	fs.StringVar(&cfg.ID, "id", "", "node ID (default: the advertised client address)")
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "client TCP listener HOST:PORT")
	fs.StringVar(&cfg.Advertise, "advertise", "", "client address to publish in the directory (default: the listener's)")
	fs.StringVar(&cfg.HTTP, "http", cfg.HTTP, "HTTP listener HOST:PORT for the API, health and metrics (empty: off)")
	fs.StringVar(&cfg.AdvertiseHTTP, "advertise-http", "", "HTTP address to publish in the directory, for browsers and drain (default: the listener's; on all interfaces, --advertise's host with the HTTP port)")
	fs.StringVar(&cfg.DNS, "dns", "", "DNS responder HOST:PORT (UDP and TCP) for the service name (empty: off)")
	durationFlag(fs, &cfg.DNSTTL, "dns-ttl", 0, 0, "TTL of DNS answers")
	intFlag(fs, &cfg.DNSRateLimit, "dns-rate-limit", -1, -1, "full UDP replies a second the DNS responder gives one client /24 (IPv6 /56; loopback exempt), TC beyond (-1: no limit)")
	intFlag(fs, &cfg.DNSMaxTCP, "dns-max-tcp", 0, -1, "TCP connections the DNS responder holds at once, a sixteenth of them per client host")
	fs.StringVar(&cfg.Cluster, "cluster", "", "embedded NATS route listener HOST:PORT (empty: a one-node cluster)")
	fs.StringVar(&s.join, "join", "", "seed nodes' cluster addresses, HOST:PORT,... (in the file: a list)")
	fs.StringVar(&cfg.Bus, "bus", "", "external NATS URL (nats://... or tls://...) instead of the embedded server")
	fs.StringVar(&cfg.ClusterSecretFile, "cluster-secret-file", "", "file holding the cluster's shared secret (16+ bytes, the same on every node): routes must present it")
	fs.StringVar(&cfg.ClusterCert, "cluster-cert", "", "this node's certificate (PEM) for TLS on the routes, verified both ways")
	fs.StringVar(&cfg.ClusterKey, "cluster-key", "", "the key of --cluster-cert (PEM)")
	fs.StringVar(&cfg.ClusterCA, "cluster-ca", "", "CA (PEM) that signed every node's --cluster-cert")
	fs.BoolVar(&cfg.InsecureCluster, "insecure-cluster", false, "run --cluster with no secret and no TLS: any server that reaches it joins")
	fs.StringVar(&cfg.BusCA, "bus-ca", "", "CA (PEM) that verifies the external NATS's certificate")
	fs.StringVar(&cfg.BusCert, "bus-cert", "", "client certificate (PEM) for the external NATS")
	fs.StringVar(&cfg.BusKey, "bus-key", "", "the key of --bus-cert (PEM)")
	fs.StringVar(&cfg.BusCreds, "bus-creds", "", "NATS credentials file (JWT and nkey seed) for the external NATS")
	fs.StringVar(&cfg.BusSystem, "bus-system", "", "NATS URL with a user of the external NATS's system account (nats://USER:PASS@HOST:PORT): a peer whose connection closes is down at once, and heartbeats slow as the cluster grows (keep the password out of ps: SWITCHBOARD_SERVE_BUS_SYSTEM)")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "certificate chain (PEM) for TLS on the client listener; must name --service (empty: plain TCP)")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "the key of --tls-cert (PEM)")
	fs.BoolVar(&cfg.HTTPTLS, "http-tls", false, "serve the HTTP listener with --tls-cert too (HTTPS)")
	fs.Var(proxiesValue{&cfg.TrustedProxies}, "trusted-proxies", "reverse proxies in front of --http whose X-Forwarded-For is believed, so that WebSockets and WebRTC peers through them count per client: IP addresses or CIDR prefixes, comma-separated (empty: none; the header is ignored)")
	fs.Var(proxiesValue{&cfg.ProxyProtocolFrom}, "proxy-protocol-from", "TCP load balancers in front of --listen and --http that send a PROXY protocol header (v1 or v2) before each client's bytes, so that clients through them count per client: IP addresses or CIDR prefixes, comma-separated; their connections must send one (empty: none; no header is read)")
	fs.StringVar(&s.wsOrigins, "ws-origins", "", "pages of other origins that may open WebSockets or post WebRTC offers here: host[:port] patterns, comma-separated, \"*\" for any (empty: the service's own pages only)")
	fs.StringVar(&cfg.TokenKey, "token-key", "", "Ed25519 public key (PEM) that signs user tokens, or several one after the other (read again on SIGHUP); set, attach needs a token (empty: users unauthenticated)")
	fs.StringVar(&cfg.AdminToken, "admin-token", "", "file holding the secret that POST/DELETE /v1/drain and POST /v1/forget need as a Bearer token (empty: loopback clients only, and no browser pages)")
	fs.BoolVar(&cfg.Pprof, "pprof", false, "serve Go profiles under /debug/pprof/ on the HTTP listener, unauthenticated")
	fs.StringVar(&cfg.NATSMonitor, "nats-monitor", "", "embedded NATS monitoring HTTP listener HOST:PORT, unauthenticated (empty: off)")
	fs.StringVar(&cfg.Group, "group", "", "this node's REGION/ZONE")
	fs.StringVar(&cfg.DataDir, "data", "", "directory for the node's stored rooms (default: see docs/operations.md)")
	intFlag(fs, &cfg.Capacity, "capacity", 0, -1, "most sessions this node admits")
	durationFlag(fs, &cfg.Heartbeat, "heartbeat", time.Millisecond, time.Minute, "how often the node publishes its entry; peers mark it down after 3 missed")
	durationFlag(fs, &cfg.HeartbeatMax, "heartbeat-max", time.Millisecond, time.Minute, "the slowest the heartbeat gets as the cluster grows, with --bus-system (about 50 heartbeats a second reach each node)")
	durationFlag(fs, &cfg.Coalesce, "coalesce", 0, 0, "how long a change of users waits for more before the entry is published")
	durationFlag(fs, &cfg.PushDelay, "push-delay", 0, 0, "how long membership changes gather before clients get a fresh directory")
	durationFlag(fs, &cfg.RemoveAfter, "remove-after", 0, 0, "how long a down peer stays listed")
	durationFlag(fs, &cfg.HelloTimeout, "hello-timeout", 0, 0, "close a connection that has not sent a whole hello this long after connecting")
	durationFlag(fs, &cfg.AttachTimeout, "attach-timeout", 0, 0, "close a session that said hello but has not attached this long after")
	durationFlag(fs, &cfg.IdleTimeout, "idle-timeout", 0, 0, "close a session that sends nothing, not even a ping, for this long")
	durationFlag(fs, &cfg.LineTimeout, "line-timeout", 0, 0, "close an attached session when one line takes this long from its first byte to its newline")
	intFlag(fs, &cfg.MaxConns, "max-conns", 0, -1, "most client connections open at once; more are refused (by default the descriptor limit less max(1024, limit/4), and at least limit/4)")
	intFlag(fs, &cfg.MaxConnsPerIP, "max-conns-per-ip", 0, -1, "most client connections open at once from one address (IPv6: one /64)")
	durationFlag(fs, &cfg.WriteTimeout, "write-timeout", 0, 0, "bound on one write to a client")
	intFlag(fs, &cfg.MaxLine, "max-line", 0, -1, "longest protocol line accepted, in bytes")
	intFlag(fs, &cfg.MaxQueue, "max-queue", 0, -1, "bytes that may wait for a slow client before its session is closed: past it while a write has taken a second, or past 8 times it at all")
	intFlag(fs, &cfg.MaxQueueTotal, "max-queue-total", 0, -1, "bytes that may wait for clients in all sessions together; past it a session with 128 KiB or more waiting is closed as slow (default 268435456)")
	intFlag(fs, &cfg.MaxRooms, "max-rooms", 0, -1, "rooms one session may be in at once")
	intFlag(fs, &cfg.MaxParticipants, "max-participants", 0, -1, "users one room holds (give every node the same value)")
	intFlag(fs, &cfg.MaxChunk, "max-chunk", 0, node.MaxChunkLimit, "longest text chunk a client may send, in bytes")
	floatFlag(fs, &cfg.ChunkRate, "chunk-rate", "text chunks a second one session may send, on average")
	intFlag(fs, &cfg.ChunkBurst, "chunk-burst", 0, -1, "text chunks one session may send at once")
	floatFlag(fs, &cfg.ByteRate, "byte-rate", "bytes of text a second one session may send, on average")
	intFlag(fs, &cfg.ByteBurst, "byte-burst", 0, -1, "bytes of text one session may send at once (at least --max-chunk)")
	durationFlag(fs, &cfg.StoreTimeout, "store-timeout", 0, 0, "how long a join or a chunk waits for the store before the client gets 'unavailable'")
	intFlag(fs, &cfg.Replicas, "replicas", 0, 5, "copies of the rooms' streams, 1..5 (0: 3 when three nodes are seen, or --join names two others and they come within 5s; else min(3, nodes seen; with --bus, its servers); raised as the cluster grows, never lowered)")
	intFlag(fs, &cfg.RoomStreams, "room-streams", 0, 256, "streams the rooms are spread over (the first node of a service decides)")
	intFlag(fs, &cfg.SnapshotEvery, "snapshot-every", 0, -1, "records of a room between two snapshots of its state")
	fs.Var(retentionValue{&cfg.RoomRetention}, "room-retention", "forget a room nobody is in this long after it was last written (0: keep rooms for ever; give every node the same)")
	durationFlag(fs, &cfg.FeedHeartbeat, "feed-heartbeat", 500*time.Millisecond, 30*time.Second, "idle heartbeat of each room feed's consumer")
	floatFlag(fs, &cfg.Rebalance.Threshold, "rebalance-threshold", "move sessions away while this node's load (sessions over capacity) is above the up nodes' mean load by this share, e.g. 0.05 (0: never rebalance)")
	durationFlag(fs, &cfg.Rebalance.Hold, "rebalance-hold", 0, 0, "how long the excess must last before sessions move (default 5s)")
	floatFlag(fs, &cfg.Rebalance.Rate, "rebalance-rate", "sessions a second at most that rebalancing asks to move (default 50)")
	durationFlag(fs, &cfg.RebalanceMinAge, "rebalance-min-age", 0, 0, "never ask a session attached less than this long ago to move for rebalancing (default 5m)")
	s.drainGrace = defaultDrainGrace
	durationFlag(fs, &s.drainGrace, "drain-grace", 0, time.Hour, "on SIGTERM or SIGINT, move the sessions to other nodes for up to this long before stopping (0: stop at once; a second signal stops at once)")
	s.sip.register(fs)
	s.rtc.register(fs)
	s.log.register(c, "info")
	fs.VisitAll(func(f *flag.Flag) {
		if slices.Contains(zeroMeans, f.Name) {
			return
		}
		switch v := f.Value.(type) {
		case *rangeInt:
			v.noZero = true
		case *rangeDuration:
			v.noZero = true
		case *nonNegFloat:
			v.noZero = true
		}
	})
	return c
}

// fileKeys are the keys a config file may set: every serve flag but
// --config and --check.
func fileKeys(c *cmdline) []string {
	return slices.DeleteFunc(c.names(), func(n string) bool { return slices.Contains(serveOnly, n) })
}

// loadServe fills s from args, the environment and the config file. Its
// errors are usage errors for the command line and the environment, and
// failures for the file.
func loadServe(s *serveSettings, args []string, stdout, stderr io.Writer) (*cmdline, error) {
	c := serveCmdline(s, stdout, stderr)
	pos, err := c.parse(args)
	if err != nil {
		return c, err
	}
	if err := c.noArgs(pos); err != nil {
		return c, err
	}
	if err := unknownTwins(c, os.Environ()); err != nil {
		return c, err
	}
	if s.configPath != "" {
		f, err := config.Load(s.configPath, fileKeys(c))
		if err != nil {
			return c, fmt.Errorf("serve: %w", err)
		}
		if err := c.applyFile(f); err != nil {
			return c, fmt.Errorf("serve: %w", err)
		}
	}
	s.cfg.Join = splitList(s.join)
	s.cfg.WSOrigins = splitList(s.wsOrigins)
	s.cfg.Version = readBuildInfo().Short()
	if s.cfg.DataDir == "" {
		dir, err := defaultDataDir(os.Geteuid(), os.Getenv, s.cfg)
		if err != nil {
			return c, fmt.Errorf("serve: %w", err)
		}
		s.cfg.DataDir = dir
		c.from["data"] = "the default for this user"
	}
	return c, nil
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	// SIGHUP reloads (reload.go); the loop below owns s then. Without the
	// handler a SIGHUP would end the process, and a supervisor's reload
	// sent just after the start (systemctl reload) would kill it: it is
	// caught first thing, and held until the loop takes it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var s serveSettings
	c, err := loadServe(&s, args, stdout, stderr)
	if err != nil {
		return err
	}
	n, logger, err := s.newNode(stderr)
	if err != nil {
		return err
	}
	if s.check {
		fmt.Fprintf(stdout, "settings are valid; node %s of %s would keep its rooms in %s\n", orDerived(s.cfg.ID), s.cfg.Service, s.cfg.DataDir)
		printSources(stdout, c)
		return nil
	}
	if err := os.MkdirAll(s.cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("serve: creating the data directory: %w", err)
	}
	if err := n.Start(ctx); err != nil {
		if ctx.Err() != nil {
			// SIGTERM or SIGINT while the node started (an operator's
			// stop, an orchestrator's): a stop asked for, not a failure
			// for a supervisor to restart.
			logger.Info("stopped while starting, as asked", "err", err)
			return nil
		}
		return err
	}
	scheme := "http"
	if s.cfg.HTTPTLS && n.HTTPAddr() != "" {
		scheme = "https"
	}
	fmt.Fprintf(stdout, "switchboard %s: node %s of %s on %s (%s %s, cluster %s, dns %s, data %s)\n",
		s.cfg.Version, n.ID(), n.Service(), n.Addr(), scheme, orNone(n.HTTPAddr()), orNone(n.ClusterAddr()), orNone(n.DNSAddr()), s.cfg.DataDir)
	stopSIP, err := s.sip.start(n, s.cfg, logger, stdout)
	if err != nil {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return errors.Join(err, n.Shutdown(shutdownCtx))
	}
	stopRTC, err := s.rtc.start(n, s.cfg, logger, stdout)
	if err != nil {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopSIP(shutdownCtx)
		return errors.Join(err, n.Shutdown(shutdownCtx))
	}
	for current := c; ctx.Err() == nil; {
		select {
		case <-ctx.Done():
		case <-hup:
			current = s.reload(n, args, c, current, logger)
		}
	}
	if s.drainGrace > 0 && n.Users() > 0 {
		// Sessions move to other nodes first (make-before-break), unless
		// none is up; a second signal stops at once.
		again, stopAgain := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		logger.Info("stopping: moving the sessions to other nodes first; signal again to stop at once", "grace", s.drainGrace, "sessions", n.Users())
		// An operator's drain already under way keeps its own window:
		// the grace bounds the wait all the same.
		grace := time.NewTimer(s.drainGrace)
		select {
		case <-n.DrainToStop(s.drainGrace):
		case <-grace.C:
			logger.Warn("stopping: the grace ended before the node was empty", "sessions", n.Users())
		case <-again.Done():
			logger.Warn("stopping at once", "sessions", n.Users())
		}
		grace.Stop()
		stopAgain()
	}
	// A signal during the shutdown ends the process at once: closing the
	// rooms and the embedded NATS server has no bound of its own (a peer
	// or an external bus that does not answer), and what a user saw
	// acknowledged is stored on a quorum already, as after kill -9.
	stopNow := make(chan os.Signal, 1)
	signal.Notify(stopNow, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(stopNow)
	shutDown := make(chan struct{})
	defer close(shutDown)
	go exitOnSignal(stopNow, shutDown, logger, os.Exit)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stopSIP(shutdownCtx)
	stopRTC(shutdownCtx)
	return n.Shutdown(shutdownCtx)
}

// exitOnSignal ends the process with exitFailure, saying so, when a
// signal comes on sigs before done is closed: serve's answer to another
// stop while its shutdown waits.
func exitOnSignal(sigs <-chan os.Signal, done <-chan struct{}, log *slog.Logger, exit func(int)) {
	select {
	case sig := <-sigs:
		log.Warn("stopping at once: " + sig.String() + " during the shutdown, which is left unfinished (as after kill -9: what was acknowledged is stored)")
		exit(exitFailure)
	case <-done:
	}
}

// unknownTwins rejects the variables of environ that carry the command's
// prefix (SWITCHBOARD_SERVE_) but name none of its flags, as the config
// file rejects unknown keys: a misspelt twin was otherwise dropped
// without a word, and SWITCHBOARD_SERVE_TOKENKEY left users
// unauthenticated, SWITCHBOARD_SERVE_ADMIN_TOKEN_FILE the drain open to
// every local user.
func unknownTwins(c *cmdline, environ []string) error {
	prefix := envPrefix(c.name)
	names := c.names()
	var errs []error
	for _, kv := range environ {
		key, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(key, prefix) || slices.ContainsFunc(names, func(n string) bool { return envName(c.name, n) == key }) {
			continue
		}
		msg := fmt.Sprintf("%s is not a setting of %s", key, c.name)
		asFlag := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(key, prefix), "_", "-"))
		if near := config.Nearest(asFlag, names); near != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", envName(c.name, near))
		}
		errs = append(errs, errors.New(msg))
	}
	if len(errs) == 0 {
		return nil
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return &usageError{cmd: c.name, err: fmt.Errorf("%s: %w", c.name, errors.Join(errs...))}
}

// printSources writes every setting that is not at its default, with
// where its value came from. Credentials in URLs (bus-system's password)
// are hidden: the output is made to be pasted into tickets and CI logs.
func printSources(w io.Writer, c *cmdline) {
	// The names' column is as wide as the longest name shown, 18 at least
	// (21 with the indent and the space after).
	tw := tabwriter.NewWriter(w, 21, 0, 1, ' ', 0)
	c.fs.VisitAll(func(f *flag.Flag) {
		from, ok := c.from[f.Name]
		if !ok || slices.Contains(serveOnly, f.Name) {
			return
		}
		fmt.Fprintf(tw, "  %s\t%-24s from %s\n", f.Name, strconv.Quote(bus.RedactURLs(f.Value.String())), from)
	})
	_ = tw.Flush()
}

// defaultDataDir is where a node keeps its rooms when no --data is given:
// /var/lib/switchboard/SERVICE/NODE for root, else
// $XDG_STATE_HOME/switchboard/SERVICE/NODE ($HOME/.local/state when
// XDG_STATE_HOME is unset). Never under the temporary directory, which
// cleaners and reboots empty. NODE is the ID, or the advertised or listen
// address when the ID is derived.
func defaultDataDir(euid int, getenv func(string) string, cfg node.Config) (string, error) {
	id := cfg.ID
	if id == "" {
		id = cmpOr(cfg.Advertise, cfg.Listen)
	}
	leaf := filepath.Join("switchboard", pathSafe(cmpOr(cfg.Service, node.DefaultService)), pathSafe(id))
	if euid == 0 {
		return filepath.Join("/var/lib", leaf), nil
	}
	if state := getenv("XDG_STATE_HOME"); filepath.IsAbs(state) {
		return filepath.Join(state, leaf), nil
	}
	if home := getenv("HOME"); filepath.IsAbs(home) {
		return filepath.Join(home, ".local", "state", leaf), nil
	}
	return "", errors.New("no --data given, and neither XDG_STATE_HOME nor HOME is an absolute path to keep the rooms under: set --data")
}

// pathSafe makes s one path element.
func pathSafe(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
	if s == "" || s == "." || s == ".." {
		return "_"
	}
	return s
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func orNone(s string) string {
	if s == "" {
		return "off"
	}
	return s
}

func orDerived(id string) string {
	if id == "" {
		return "(ID from its address)"
	}
	return id
}

// zeroIsNotDefault ends the error of a 0 that a setting refuses.
const zeroIsNotDefault = "0 does not stand for the default: leave the setting out for that"

// rangeInt is an int flag bounded to min..max (max < 0: no bound). With
// noZero it refuses 0 (so that 0..max is 1..max).
type rangeInt struct {
	p        *int
	min, max int
	noZero   bool
}

func intFlag(fs *flag.FlagSet, p *int, name string, min, max int, usage string) {
	fs.Var(&rangeInt{p: p, min: min, max: max}, name, usage)
}

// Type names the value in the help.
func (v *rangeInt) Type() string { return "int" }

func (v *rangeInt) String() string {
	if v == nil || v.p == nil {
		return "0"
	}
	return strconv.Itoa(*v.p)
}

func (v *rangeInt) Set(s string) error {
	n, err := strconv.Atoi(strings.ReplaceAll(s, "_", ""))
	if err != nil {
		return fmt.Errorf("%q is not a whole number", s)
	}
	least := v.min
	if v.noZero && least == 0 {
		least = 1
	}
	switch {
	case n == 0 && v.noZero && v.min < 0:
		return fmt.Errorf("0 is not allowed: write %d, or 1 or more (%s)", v.min, zeroIsNotDefault)
	case n == 0 && v.noZero:
		return fmt.Errorf("0 is below %d, the least (%s)", least, zeroIsNotDefault)
	case n < v.min || (v.max >= 0 && n > v.max):
		if v.max < 0 {
			return fmt.Errorf("%d is below %d", n, v.min)
		}
		return fmt.Errorf("%d is outside %d..%d", n, least, v.max)
	}
	*v.p = n
	return nil
}

// rangeDuration is a duration flag that is 0 (the node's default; with
// noZero, refused) or within min..max (max 0: no bound).
type rangeDuration struct {
	p        *time.Duration
	min, max time.Duration
	noZero   bool
}

// proxiesValue is --trusted-proxies and --proxy-protocol-from: a list of
// addresses and prefixes.
type proxiesValue struct{ p *forwarded.Proxies }

func (v proxiesValue) String() string {
	if v.p == nil {
		return ""
	}
	return v.p.String()
}

func (v proxiesValue) Set(s string) error {
	p, err := forwarded.Parse(s)
	if err != nil {
		return err
	}
	*v.p = p
	return nil
}

// retentionValue is --room-retention: a duration of at least 1 s, or 0
// to keep rooms for ever (which node.Config says with a negative value).
type retentionValue struct{ p *time.Duration }

// Type names the value in the help.
func (v retentionValue) Type() string { return "duration" }

func (v retentionValue) String() string {
	if v.p == nil || *v.p < 0 {
		return "0s"
	}
	return v.p.String()
}

func (v retentionValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a duration such as 720h or 24h", s)
	case d < 0:
		return fmt.Errorf("%v is negative (0 keeps rooms for ever)", d)
	case d == 0:
		*v.p = -1
	case d < time.Second:
		return fmt.Errorf("%v is below 1s", d)
	default:
		*v.p = d
	}
	return nil
}

func durationFlag(fs *flag.FlagSet, p *time.Duration, name string, min, max time.Duration, usage string) {
	fs.Var(&rangeDuration{p: p, min: min, max: max}, name, usage)
}

// Type names the value in the help.
func (v *rangeDuration) Type() string { return "duration" }

func (v *rangeDuration) String() string {
	if v == nil || v.p == nil {
		return "0s"
	}
	return v.p.String()
}

func (v *rangeDuration) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 500ms, 15s or 5m", s)
	}
	switch {
	case d < 0:
		return fmt.Errorf("%v is negative", d)
	case d == 0 && v.noZero && v.min > 0:
		return fmt.Errorf("0s is below %v, the least (%s)", v.min, zeroIsNotDefault)
	case d == 0 && v.noZero:
		return fmt.Errorf("0s is not allowed: write a duration above 0s (%s)", zeroIsNotDefault)
	case d != 0 && d < v.min:
		return fmt.Errorf("%v is below %v", d, v.min)
	case v.max > 0 && d > v.max:
		return fmt.Errorf("%v is above %v", d, v.max)
	}
	*v.p = d
	return nil
}

// nonNegFloat is a float flag that may not be negative; with noZero, it
// may not be 0 either.
type nonNegFloat struct {
	p      *float64
	noZero bool
}

func floatFlag(fs *flag.FlagSet, p *float64, name, usage string) {
	fs.Var(&nonNegFloat{p: p}, name, usage)
}

// Type names the value in the help.
func (v *nonNegFloat) Type() string { return "float" }

func (v *nonNegFloat) String() string {
	if v == nil || v.p == nil {
		return "0"
	}
	return strconv.FormatFloat(*v.p, 'g', -1, 64)
}

func (v *nonNegFloat) Set(s string) error {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("%q is not a number", s)
	}
	if f < 0 {
		return fmt.Errorf("%v is negative", f)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("%q is not a finite number", s)
	}
	if f == 0 && v.noZero {
		return fmt.Errorf("0 is not allowed: write a number above 0 (%s)", zeroIsNotDefault)
	}
	*v.p = f
	return nil
}
