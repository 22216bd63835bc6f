package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// runProbe is `switchboard probe`: asks a node's /readyz (or /healthz)
// and exits 0 when it answers 200, 1 otherwise. It is the binary's own
// HTTP probe, for images with no shell or curl and for orchestrators
// that run a command to decide whether a node is ready.
func runProbe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCmdline("probe", "[flags]",
		"Asks a node's HTTP API whether it is ready (GET /readyz: up, so taking new\n"+
			"sessions; not while starting, full, draining or stepped aside) or, with --live,\n"+
			"alive (GET /healthz). Exits 0 on 200, 1 otherwise, with the node's status and\n"+
			"reason. It says no hello on the client port.", stdout, stderr)
	fs := c.fs
	addr := fs.String("http", "127.0.0.1:7071", "the node's HTTP address HOST:PORT (serve --http)")
	live := fs.Bool("live", false, "ask /healthz (the process serves) instead of /readyz")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	https := fs.Bool("https", false, "speak HTTPS (serve --http-tls), trusting --ca or the system's CAs")
	var tf tlsFlags
	tf.register(c)
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if err := c.noArgs(pos); err != nil {
		return err
	}
	path := "/readyz"
	if *live {
		path = "/healthz"
	}
	hc := &http.Client{Timeout: *timeout}
	url := "http://" + *addr + path
	if *https || tf.on || tf.ca != "" {
		tf.on = true
		tlsCfg, err := tf.config(c.name, *addr)
		if err != nil {
			return err
		}
		hc.Transport = &http.Transport{TLSClientConfig: tlsCfg}
		url = "https://" + *addr + path
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if plainToHTTPS(resp, raw) {
		return fmt.Errorf("probe: %s answered %s (%s)", *addr, resp.Status, addHTTPS)
	}
	var body struct{ Status, Reason string }
	_ = json.Unmarshal(raw, &body)
	line := body.Status
	if body.Reason != "" {
		line += ": " + body.Reason
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe: %s answered %s (%s)", *addr, resp.Status, line)
	}
	fmt.Fprintf(stdout, "%s %s\n", *addr, line)
	return nil
}
