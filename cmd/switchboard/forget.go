package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/node"
)

// runForget is `switchboard forget NODE ID`: the rooms' storage of an
// embedded cluster forgets a node that is gone for good (POST /v1/forget
// on a node still up).
func runForget(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCmdline("forget", "[flags] NODE ID",
		"Tells the rooms' storage of an embedded cluster (the nodes' JetStream) to\n"+
			"forget the node ID, gone for good: it no longer counts towards the majority\n"+
			"the storage needs, and its copies of the rooms go to the nodes left, or to\n"+
			"the next node that joins. NODE is the HTTP address HOST:PORT (serve --http)\n"+
			"of any node still up. The node refuses an ID its directory lists as\n"+
			"anything but down. Start no node under that ID again (the storage may\n"+
			"refuse it a copy of the rooms): give a replacement a new --id and an empty\n"+
			"--data. Exits 0 once the storage agreed, 1 otherwise (after a 503 the\n"+
			"removal may still be committed: a 404 on asking again means it was). On\n"+
			"an external bus (--bus), remove NATS servers with NATS's own tools.", stdout, stderr)
	fs := c.fs
	adminToken := fs.String("admin-token", "", "file holding the node's admin token (serve --admin-token); without it only a node on loopback accepts")
	https := fs.Bool("https", false, "speak HTTPS to the node's HTTP API (serve --http-tls), trusting --ca or the system's CAs")
	var tf tlsFlags
	tf.register(c)
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef(c.name, "forget: want NODE (a node's HTTP address HOST:PORT) and the ID to forget, got %d arguments", len(pos))
	}
	addr, id := pos[0], pos[1]
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return usagef(c.name, "forget: NODE %q: want the HTTP address HOST:PORT of a node still up", addr)
	}
	token, err := readAdminToken(c.name, *adminToken)
	if err != nil {
		return err
	}
	if *https {
		tf.on = true
	}
	tlsCfg, err := tf.config(c.name, addr)
	if err != nil {
		return err
	}
	// The node waits up to 10 s for the storage to agree.
	hc, scheme := apiClient(30*time.Second, tlsCfg)
	u := scheme + addr + "/v1/forget?node=" + url.QueryEscape(id)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return fmt.Errorf("forget: %w", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		if scheme == "http://" && errors.Is(err, io.EOF) {
			return fmt.Errorf("forget: %w (%s)", err, addHTTPS)
		}
		return fmt.Errorf("forget: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("forget: reading the answer of POST %s: %w", u, err)
	}
	if plainToHTTPS(resp, body) {
		return fmt.Errorf("forget: POST %s: %s (%s)", u, resp.Status, addHTTPS)
	}
	var res node.ForgetResult
	if err := json.Unmarshal(body, &res); err != nil {
		return fmt.Errorf("forget: POST %s: %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("forget: %s: %s", resp.Status, res.Error)
	}
	fmt.Fprintf(stdout, "the cluster's storage forgot %s: it no longer counts it, and gives its copies to the nodes left (a replacement needs a new --id)\n", res.Node)
	return nil
}
