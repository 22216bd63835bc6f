package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/promtext"
)

// runProbe is `switchboard probe`: asks a node's /readyz (or /healthz)
// and exits 0 when it answers 200, 1 otherwise. It is the binary's own
// HTTP probe, for images with no shell or curl and for orchestrators
// that run a command to decide whether a node is ready.
func runProbe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCmdline("probe", "[flags] [HTTP...]",
		"Asks a node's HTTP API whether it is ready (GET /readyz: up, so taking new\n"+
			"sessions; not while starting, full, draining or stepped aside) or, with --live,\n"+
			"alive (GET /healthz). Exits 0 on 200, 1 otherwise, with the node's status and\n"+
			"reason. It says no hello on the client port.\n\n"+
			"With --caught-up it asks every node named (HTTP... or --http) for its /metrics\n"+
			"instead, and exits 0 only when each of the rooms' streams has a leader and\n"+
			"every copy caught up with it (switchboard_room_streams_caught_up summed over\n"+
			"the nodes equals switchboard_room_streams), so that the rooms survive the\n"+
			"loss of any one node: name every node of the cluster. Streams of fewer than\n"+
			"3 copies (switchboard_room_replicas: a cluster of two, a node alone with\n"+
			"--cluster, or --replicas 1 or 2) do not\n"+
			"survive it: 1. Nodes that embed no clustered NATS report no streams (their\n"+
			"copies are an external bus's): 0.", stdout, stderr)
	fs := c.fs
	addr := fs.String("http", "127.0.0.1:7071", "the node's HTTP address HOST:PORT (serve --http)")
	live := fs.Bool("live", false, "ask /healthz (the process serves) instead of /readyz")
	caughtUp := fs.Bool("caught-up", false, "ask every node named whether the rooms' streams have every copy caught up")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for each answer")
	https := fs.Bool("https", false, "speak HTTPS (serve --http-tls), trusting --ca or the system's CAs")
	var tf tlsFlags
	tf.register(c)
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if !*caughtUp {
		if len(pos) > 0 {
			what := "argument"
			if len(pos) > 1 {
				what = "arguments"
			}
			return usagef(c.name, "%s: unexpected %s %q: HTTP addresses go with --caught-up; name the node to ask whether it is ready with --http", c.name, what, strings.Join(pos, " "))
		}
	} else if *live {
		return usagef(c.name, "%s: --live and --caught-up ask different questions; give one", c.name)
	}
	if *https || tf.ca != "" {
		tf.on = true
	}
	p := prober{cmd: c.name, timeout: *timeout, tls: &tf}
	if *caughtUp {
		addrs := pos
		if len(addrs) == 0 {
			addrs = []string{*addr}
		}
		line, err := p.caughtUp(ctx, addrs)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, line)
		return nil
	}
	path := "/readyz"
	if *live {
		path = "/healthz"
	}
	status, raw, err := p.get(ctx, *addr, path)
	if err != nil {
		return err
	}
	var body struct{ Status, Reason string }
	_ = json.Unmarshal(raw, &body)
	line := body.Status
	if body.Reason != "" {
		line += ": " + body.Reason
	}
	if status != http.StatusOK {
		return fmt.Errorf("probe: %s answered %d %s (%s)", *addr, status, http.StatusText(status), line)
	}
	fmt.Fprintf(stdout, "%s %s\n", *addr, line)
	return nil
}

// prober asks nodes' HTTP APIs, over HTTPS when its TLS flags say so.
type prober struct {
	cmd     string
	timeout time.Duration
	tls     *tlsFlags
}

// get asks addr for path and returns the status code and up to 1 MiB of
// the body.
func (p prober) get(ctx context.Context, addr, path string) (int, []byte, error) {
	hc := &http.Client{Timeout: p.timeout}
	url := "http://" + addr + path
	if p.tls.on {
		tlsCfg, err := p.tls.config(p.cmd, addr)
		if err != nil {
			return 0, nil, err
		}
		hc.Transport = &http.Transport{TLSClientConfig: tlsCfg}
		url = "https://" + addr + path
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("probe: %w", err)
	}
	resp, err := hc.Do(req)
	if notHTTP(err) {
		// A node's client port answers with a protocol line.
		return 0, nil, fmt.Errorf("probe: %s is not an HTTP API: give serve's --http address", addr)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("probe: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("probe: reading %s%s: %w", addr, path, err)
	}
	if plainToHTTPS(resp, raw) {
		return 0, nil, fmt.Errorf("probe: %s answered %s (%s)", addr, resp.Status, addHTTPS)
	}
	if resp.StatusCode == http.StatusMisdirectedRequest {
		// The node reads answer under an address or a published name
		// only; its answer says so.
		return 0, nil, fmt.Errorf("probe: %s answered %s to GET %s: %s", addr, resp.Status, path, strings.TrimSpace(string(raw)))
	}
	return resp.StatusCode, raw, nil
}

// caughtUp reads every node's /metrics and judges them (streamCopiesOf).
func (p prober) caughtUp(ctx context.Context, addrs []string) (string, error) {
	nodes := make([]nodeStreams, 0, len(addrs))
	for _, addr := range addrs {
		status, raw, err := p.get(ctx, addr, "/metrics")
		if err != nil {
			return "", err
		}
		if status != http.StatusOK {
			return "", fmt.Errorf("probe: %s answered %d %s to GET /metrics", addr, status, http.StatusText(status))
		}
		ns, err := parseNodeStreams(addr, raw)
		if err != nil {
			return "", err
		}
		nodes = append(nodes, ns)
	}
	return streamCopiesOf(nodes)
}

// nodeStreams is what one node's /metrics says of the rooms' streams.
type nodeStreams struct {
	addr string
	// reports: the node exports the two gauges, which it does when it
	// embeds a clustered NATS.
	reports           bool
	streams, caughtUp int
	// replicas: the copies the node keeps of the streams
	// (switchboard_room_replicas; 0 when it does not say).
	replicas int
}

// parseNodeStreams reads switchboard_room_streams and
// switchboard_room_streams_caught_up from a Prometheus text exposition.
func parseNodeStreams(addr string, raw []byte) (nodeStreams, error) {
	const streams, caughtUp, replicas = "switchboard_room_streams", "switchboard_room_streams_caught_up", "switchboard_room_replicas"
	ns := nodeStreams{addr: addr}
	values, err := promtext.Values(bytes.NewReader(raw), streams, caughtUp, replicas)
	if err != nil {
		return ns, fmt.Errorf("probe: %s's /metrics: %w", addr, err)
	}
	for name, v := range values {
		if v < 0 || v != math.Trunc(v) || v > 1e6 {
			return ns, fmt.Errorf("probe: %s: %s is %v, not a count", addr, name, v)
		}
	}
	ns.replicas = int(values[replicas])
	delete(values, replicas)
	switch len(values) {
	case 0:
	case 2:
		ns.reports, ns.streams, ns.caughtUp = true, int(values[streams]), int(values[caughtUp])
	default:
		return ns, fmt.Errorf("probe: %s reports one of %s and %s without the other", addr, streams, caughtUp)
	}
	return ns, nil
}

// streamCopiesOf judges the nodes' figures: every stream is led by one
// node, which counts it as caught up when every copy is, so the streams
// have all their copies exactly when the counts summed over all nodes
// equal the streams. Nodes reporting none embed no clustered NATS: when
// none does, there is nothing to wait for; when only some do, the nodes
// named are not one cluster's alike. Streams of one or two copies have
// every copy caught up and still lose their quorum with any node: a
// node saying so fails the judgement too.
func streamCopiesOf(nodes []nodeStreams) (string, error) {
	var reporting, silent []string
	streams, caught := 0, 0
	var few *nodeStreams // the node keeping the fewest copies, when under 3
	for _, n := range nodes {
		if !n.reports {
			silent = append(silent, n.addr)
			continue
		}
		if len(reporting) > 0 && n.streams != streams {
			return "", fmt.Errorf("probe: %s counts %d room streams, %s %d: nodes of one cluster?", n.addr, n.streams, reporting[0], streams)
		}
		reporting = append(reporting, n.addr)
		streams = n.streams
		caught += n.caughtUp
		if n.replicas > 0 && n.replicas < 3 && (few == nil || n.replicas < few.replicas) {
			few = &n
		}
	}
	switch {
	case len(reporting) == 0:
		return fmt.Sprintf("%d nodes embed no clustered NATS: no room streams of theirs to wait for", len(nodes)), nil
	case len(silent) > 0:
		return "", fmt.Errorf("probe: %s report no room streams (an external --bus, or no --cluster?) while %s do", strings.Join(silent, ", "), strings.Join(reporting, ", "))
	case caught != streams:
		return "", fmt.Errorf("probe: %d of %d room streams have every copy caught up, summed over %d nodes (a copy still catching up, a node down, or not every node named)", caught, streams, len(nodes))
	case few != nil:
		return "", fmt.Errorf("probe: %s keeps %d copies of the room streams: with fewer than 3 the loss of any node takes their quorum (a cluster of fewer than three nodes, or --replicas; docs/operations.md, \"The rooms' replicas\")", few.addr, few.replicas)
	}
	return fmt.Sprintf("%d of %d room streams have every copy caught up, over %d nodes", caught, streams, len(nodes)), nil
}
