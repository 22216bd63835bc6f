package node

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/wire"
)

// latencyBuckets are the upper bounds, in seconds, of the latency
// histograms: a 1-2-5 series from 0.5 ms to 10 s, fine enough for
// keystrokes that should travel in a few milliseconds and wide enough for
// a store that waits out a JetStream leader election.
var latencyBuckets = []float64{0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10}

// errorCodes are the wire error codes the node sends: the values of the
// code label of switchboard_bad_input_total, each present from the start.
var errorCodes = []string{
	wire.CodeLineTooLong, wire.CodeBadJSON, wire.CodeBadUTF8, wire.CodeUnknownOp,
	wire.CodeBadRequest, wire.CodeVersion, wire.CodeNoHello, wire.CodeNotAttached,
	wire.CodeHelloTimeout, wire.CodeFull, wire.CodeDraining, wire.CodeIdle,
	wire.CodeLimit, wire.CodeRate, wire.CodeUnavailable, wire.CodeShutdown,
	wire.CodeUnauthorized, wire.CodeTooManyConns, wire.CodeAttachTimeout, wire.CodeLineTimeout,
	wire.CodeRemoved,
}

// statuses are the values of the status label of the status gauges.
var statuses = []directory.Status{directory.Starting, directory.Up, directory.Degraded, directory.Draining, directory.Full, directory.Down}

// metrics are a node's Prometheus metrics, in a registry of its own so
// that several nodes can live in one process.
type metrics struct {
	registry    *prometheus.Registry
	received    prometheus.Counter
	answers     prometheus.Counter
	changes     *prometheus.CounterVec
	disconnects prometheus.Counter
	pushes      prometheus.Counter
	deltaPushes prometheus.Counter
	connections prometheus.Gauge
	attaches    prometheus.Counter
	refused     *prometheus.CounterVec
	// connsRefused holds the counter of each reason in refusedReasons;
	// read-only after newMetrics.
	connsRefused    map[string]prometheus.Counter
	connsRefusedVec *prometheus.CounterVec
	// viewsRefused holds the counter of each bucket in viewBuckets;
	// read-only after newMetrics.
	viewsRefused    map[string]prometheus.Counter
	viewsRefusedVec *prometheus.CounterVec
	attachTime      prometheus.Histogram
	// badInput holds the counter of each code in errorCodes, resolved once
	// so that counting takes no lock and allocates nothing; the map is
	// read-only after newMetrics.
	badInput    map[string]prometheus.Counter
	badInputVec *prometheus.CounterVec
	// storageStopped, storageRestarts and storageRepairs: the embedded
	// JetStream's stops, the watch's restarts, and its stops to start
	// again Raft groups that stopped (storage.go).
	storageStopped  prometheus.Gauge
	storageRestarts prometheus.Counter
	storageRepairs  prometheus.Counter
	// busChecks counts the external bus watch's reads, by what each
	// found (storage.go); resolved once, like badInput.
	busChecks    map[busRead]prometheus.Counter
	busChecksVec *prometheus.CounterVec
	// reloadOK and reloads: the outcome of the last reload (SIGHUP) and
	// the reloads by outcome (NoteReload).
	reloadOK prometheus.Gauge
	reloads  *prometheus.CounterVec
}

func newMetrics(n *Node) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_directory_updates_received_total",
			Help: "Directory entries from peers that passed the node's checks (their own node's subject, the size, the format, no incarnation too far ahead; those dropped are logged) and went to the table, which may still find them stale or past its bounds (changes of kind stale and refused).",
		}),
		answers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_directory_answers_total",
			Help: "This node's entry sent to one peer alone: answers to sync requests and news for newcomers.",
		}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_directory_changes_total",
			Help: "Changes applied to the directory table, by kind.",
		}, []string{"kind"}),
		disconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_directory_disconnects_total",
			Help: "Peers marked down the moment the bus reported their directory connection closed (serve --bus-system).",
		}),
		pushes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_directory_pushes_total",
			Help: "Directory messages pushed to attached clients.",
		}),
		deltaPushes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_directory_delta_pushes_total",
			Help: "Directory messages pushed to attached clients that carried only the nodes that changed (a delta); also counted in switchboard_directory_pushes_total.",
		}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchboard_connections",
			Help: "Open client connections, attached or not.",
		}),
		attaches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_attaches_total",
			Help: "Sessions attached.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_attach_refused_total",
			Help: "Attaches refused, by error code.",
		}, []string{"code"}),
		connsRefusedVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_connections_refused_total",
			Help: "Client connections accepted only to be answered too_many_connections and closed, by the limit reached: total (MaxConns), per_ip (MaxConnsPerIP) or per_site (4 times that for an IPv6 /48); on the HTTP listener http, http_per_ip and http_idle; proxy_header for a balancer's connection without a valid PROXY protocol header.",
		}, []string{"reason"}),
		connsRefused: make(map[string]prometheus.Counter, len(refusedReasons)),
		viewsRefusedVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_views_refused_total",
			Help: "Directories not drawn for a hello (answered rate) or an attach refusal (sent without one), by the bucket that was empty: connection (ViewRate, ViewBurst) or source (the source address's, across its connections: twice --max-conns-per-ip, refilled at a quarter of it a second).",
		}, []string{"bucket"}),
		viewsRefused: make(map[string]prometheus.Counter, len(viewBuckets)),
		attachTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "switchboard_attach_seconds",
			Help:    "Time from a session's hello to its attached reply, for attaches that succeed: the client's pick and its attach line's trip included.",
			Buckets: latencyBuckets,
		}),
		badInputVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_bad_input_total",
			Help: "Error messages sent to clients, by wire error code: answers to bad lines, refused attaches and room requests, and the fatal errors a session is closed with.",
		}, []string{"code"}),
		badInput: make(map[string]prometheus.Counter, len(errorCodes)),
		storageStopped: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchboard_storage_stopped",
			Help: "1 while this node cannot store text and steps aside: its embedded JetStream is stopped (nats-server stops it when a write finds the data directory full; the node stops it to start again Raft groups that stopped on a failed write) or not yet current after a restart, or has known no metadata leader for 20 s (most of the cluster's nodes gone), or (with --bus) the bus's JetStream does not serve it; 0 otherwise.",
		}),
		storageRestarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_storage_restarts_total",
			Help: "Attempts to restart this node's stopped embedded JetStream on its data directory, each once the file system had room again.",
		}),
		storageRepairs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_storage_repairs_total",
			Help: "Times this node stopped its embedded JetStream itself, to start again Raft groups that nats-server had stopped on a failed write (a full descriptor table, say), each after a group had been stopped 5 s and a random 0 to 5 s more (longer after another repair within 10 min).",
		}),
		busChecksVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_bus_checks_total",
			Help: "With --bus: the node's questions to the bus's JetStream, every 2 s, by what each found: answered (or a record was stored since the last), no_jetstream (not enabled, or no responders), silent (no answer in time, or no metadata leader), unreachable (not connected).",
		}, []string{"result"}),
		busChecks: make(map[busRead]prometheus.Counter, len(busReadNames)),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchboard_reload_successful",
			Help: "1 when the last reload (SIGHUP: certificates, token keys, admin token, and with --config the file's live settings) took everything it read, or none has been asked; 0 when it refused something and kept what was in use.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_reloads_total",
			Help: "Reloads asked for (SIGHUP), by result: ok, or failed (something refused; what was in use kept).",
		}, []string{"result"}),
	}
	m.reloadOK.Set(1)
	m.reloads.WithLabelValues("ok")
	m.reloads.WithLabelValues("failed")
	for r, name := range busReadNames {
		m.busChecks[r] = m.busChecksVec.WithLabelValues(name)
	}
	for _, code := range errorCodes {
		m.badInput[code] = m.badInputVec.WithLabelValues(code)
	}
	for _, reason := range refusedReasons {
		m.connsRefused[reason] = m.connsRefusedVec.WithLabelValues(reason)
	}
	for _, b := range viewBuckets {
		m.viewsRefused[b] = m.viewsRefusedVec.WithLabelValues(b)
	}
	for _, code := range []string{wire.CodeFull, wire.CodeDraining} {
		m.refused.WithLabelValues(code)
	}
	for k := directory.Stale; k <= directory.Refused; k++ {
		m.changes.WithLabelValues(k.String())
	}
	m.registry.MustRegister(m.received, m.answers, m.changes, m.disconnects, m.pushes, m.deltaPushes, m.connections, m.attaches, m.refused, m.connsRefusedVec, m.viewsRefusedVec, m.attachTime, m.badInputVec, m.storageStopped, m.storageRestarts, m.storageRepairs, m.busChecksVec, m.reloadOK, m.reloads,
		directoryCollector{n},
		certCollector{n},
		dnsCollector{n},
		newBuildInfo(n.cfg.Version),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// errorSent counts an error message with code sent to a client.
func (m *metrics) errorSent(code string) {
	if c, ok := m.badInput[code]; ok {
		c.Inc()
		return
	}
	m.badInputVec.WithLabelValues(code).Inc() // a code errorCodes misses
}

// attached observes an attach answered now whose hello came at hello.
func (m *metrics) attached(hello time.Time) {
	m.attachTime.Observe(time.Since(hello).Seconds())
}

// newBuildInfo is switchboard_build_info: 1, labelled with the version
// the node reports in the directory (Config.Version, which serve takes
// from the build, -ldflags' version first) or else the binary's module
// version, and the VCS revision and Go version as runtime/debug reports
// them ("unknown" where the binary does not record one, as in tests).
func newBuildInfo(reported string) prometheus.Gauge {
	version, revision, goVersion := "unknown", "unknown", runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				revision = s.Value
			}
		}
	}
	if reported != "" {
		version = reported
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "switchboard_build_info",
		Help:        "Always 1; its labels say which build runs: module version, VCS revision and Go version.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": goVersion},
	})
	g.Set(1)
	return g
}

var (
	usersDesc    = prometheus.NewDesc("switchboard_users", "Sessions attached to this node.", nil, nil)
	capacityDesc = prometheus.NewDesc("switchboard_capacity", "Sessions this node admits.", nil, nil)
	statusDesc   = prometheus.NewDesc("switchboard_node_status", "This node's own status: 1 for the status it reports, 0 for the others.", []string{"status"}, nil)
	nodesDesc    = prometheus.NewDesc("switchboard_nodes", "Nodes in this node's directory, by status.", []string{"status"}, nil)
	ageDesc      = prometheus.NewDesc("switchboard_directory_entry_age_seconds", "Time since each directory entry was last heard from.", []string{"node"}, nil)
	peerUsers    = prometheus.NewDesc("switchboard_directory_users", "Users of each node as this node's directory shows them.", []string{"node"}, nil)
)

// certExpiryDesc is when each certificate the node serves stops being
// valid.
var certExpiryDesc = prometheus.NewDesc("switchboard_certificate_expiry_timestamp_seconds",
	"When the certificate this node uses now stops being valid (the earliest NotAfter of the certificate and the intermediates sent with it, Unix seconds): use=client for the client listener (and HTTPS), use=cluster for the routes, use=bus for the external bus's client certificate (--bus-cert, read from its file). Read at scrape time, so a certificate reloaded on SIGHUP or replaced shows at once.",
	[]string{"use"}, nil)

// certCollector reports the expiry of the certificates in use at scrape
// time; nothing for a listener without TLS.
type certCollector struct{ n *Node }

func (c certCollector) Describe(ch chan<- *prometheus.Desc) { ch <- certExpiryDesc }

func (c certCollector) Collect(ch chan<- prometheus.Metric) {
	expiry := func(use string, chain [][]byte) {
		if at, ok := chainNotAfter(chain); ok {
			ch <- prometheus.MustNewConstMetric(certExpiryDesc, prometheus.GaugeValue, float64(at.Unix()), use)
		}
	}
	if c.n.sec.cert != nil {
		if cert := c.n.sec.cert.Current(); cert != nil {
			expiry("client", cert.Certificate)
		}
	}
	if c.n.bus != nil && c.n.bus.RouteKeyPair() != nil {
		if cert := c.n.bus.RouteKeyPair().Current(); cert != nil {
			expiry("cluster", cert.Certificate)
		}
	}
	if c.n.cfg.BusCert != "" {
		// The NATS client reads the file at each connection: so does the
		// scrape, and a file it cannot read shows no series.
		if chain, err := readCertChain(c.n.cfg.BusCert); err == nil {
			expiry("bus", chain)
		}
	}
}

// chainNotAfter is when a certificate chain (DER, the certificate
// first) stops being valid: the earliest NotAfter of its certificates.
// False when the chain is empty or one of them does not parse.
func chainNotAfter(chain [][]byte) (time.Time, bool) {
	var first time.Time
	for _, der := range chain {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return time.Time{}, false
		}
		if first.IsZero() || cert.NotAfter.Before(first) {
			first = cert.NotAfter
		}
	}
	return first, !first.IsZero()
}

// readCertChain reads the certificates (DER) of a PEM file, in order.
func readCertChain(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var chain [][]byte
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type == "CERTIFICATE" {
			chain = append(chain, block.Bytes)
		}
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("no certificate in %s", path)
	}
	return chain, nil
}

// The DNS responder's refusals (dnsserver.Stats), read at scrape time.
var (
	dnsRateLimitedDesc = prometheus.NewDesc("switchboard_dns_rate_limited_total",
		"UDP queries the DNS responder answered with an empty truncated reply because their client network was over --dns-rate-limit.", nil, nil)
	dnsTCPRefusedDesc = prometheus.NewDesc("switchboard_dns_tcp_refused_total",
		"TCP connections the DNS responder closed as it accepted them, over --dns-max-tcp or a client host's share of it.", nil, nil)
	dnsTCPWriteFailedDesc = prometheus.NewDesc("switchboard_dns_tcp_write_failed_total",
		"TCP connections the DNS responder closed because a reply could not be written within 2 s (a client that does not read) or to a client gone.", nil, nil)
	dnsNotServingDesc = prometheus.NewDesc("switchboard_dns_not_serving_total",
		"Queries for the zone the DNS responder answered SERVFAIL because the node was starting or degraded.", nil, nil)
)

// dnsCollector reports the DNS responder's refusals; nothing without one.
type dnsCollector struct{ n *Node }

func (c dnsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- dnsRateLimitedDesc
	ch <- dnsTCPRefusedDesc
	ch <- dnsTCPWriteFailedDesc
	ch <- dnsNotServingDesc
}

func (c dnsCollector) Collect(ch chan<- prometheus.Metric) {
	if c.n.dns == nil {
		return
	}
	st := c.n.dns.Stats()
	ch <- prometheus.MustNewConstMetric(dnsRateLimitedDesc, prometheus.CounterValue, float64(st.RateLimited))
	ch <- prometheus.MustNewConstMetric(dnsTCPRefusedDesc, prometheus.CounterValue, float64(st.TCPRefused))
	ch <- prometheus.MustNewConstMetric(dnsTCPWriteFailedDesc, prometheus.CounterValue, float64(st.TCPWriteFailed))
	ch <- prometheus.MustNewConstMetric(dnsNotServingDesc, prometheus.CounterValue, float64(st.NotServing))
}

// directoryCollector reads the node's state and its directory snapshot at
// scrape time.
type directoryCollector struct{ n *Node }

func (c directoryCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{usersDesc, capacityDesc, statusDesc, nodesDesc, ageDesc, peerUsers} {
		ch <- d
	}
}

func (c directoryCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(usersDesc, prometheus.GaugeValue, float64(c.n.Users()))
	ch <- prometheus.MustNewConstMetric(capacityDesc, prometheus.GaugeValue, float64(c.n.capacity.Load()))
	self := c.n.Status()
	for _, s := range statuses {
		v := 0.0
		if s == self {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(statusDesc, prometheus.GaugeValue, v, string(s))
	}
	counts := map[directory.Status]int{}
	for _, node := range c.n.Nodes() {
		counts[node.Status]++
		ch <- prometheus.MustNewConstMetric(ageDesc, prometheus.GaugeValue, float64(node.AgeMS)/1000, node.ID)
		ch <- prometheus.MustNewConstMetric(peerUsers, prometheus.GaugeValue, float64(node.Users), node.ID)
	}
	for _, s := range statuses {
		ch <- prometheus.MustNewConstMetric(nodesDesc, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
}

// MonitorAddr is the bound address of the embedded NATS server's HTTP
// monitoring endpoint (Config.NATSMonitor), or "" when it is off.
func (n *Node) MonitorAddr() string {
	if n.bus == nil {
		return ""
	}
	if a := n.bus.MonitorAddr(); a != nil {
		return a.String()
	}
	return ""
}
