package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/wire"
)

// runDrain is `switchboard drain NODE`: a drain to empty through the
// node's HTTP API, followed until the node reports it ended.
func runDrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCmdline("drain", "[flags] NODE",
		"Drains a node to empty: it admits no new session and asks its sessions to move\n"+
			"to other nodes, in batches spread over --within; sessions still there at the\n"+
			"end are closed with \"shutdown\". NODE is the node's HTTP address HOST:PORT,\n"+
			"its ID, looked up in the directory of --via, or its client address HOST:PORT\n"+
			"(a node's ID by default), whose directory gives the HTTP address. Prints\n"+
			"the progress and exits once the node reports the drain ended (0), or when\n"+
			"it could not be started or followed (1). --undo stops draining instead.\n"+
			"--https speaks HTTPS to a node serving --http-tls, verifying the service\n"+
			"name as --tls-name or --via gives it.", stdout, stderr)
	fs := c.fs
	within := fs.Duration("within", 30*time.Second, "the drain's window: every session is asked to move within it, and the rest closed at its end")
	adminToken := fs.String("admin-token", "", "file holding the node's admin token (serve --admin-token); without it only a node on loopback accepts")
	via := fs.String("via", node.DefaultListen, "a node's client address HOST:PORT whose directory names NODE, when NODE is an ID")
	wait := fs.Bool("wait", true, "follow the drain until it ends")
	undo := fs.Bool("undo", false, "stop draining (DELETE /v1/drain): the node admits sessions again")
	https := fs.Bool("https", false, "speak HTTPS to the node's HTTP API (serve --http-tls), trusting --ca or the system's CAs")
	var tf tlsFlags
	tf.register(c)
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef(c.name, "drain: want one NODE (its HTTP address or ID), got %d arguments", len(pos))
	}
	if *within < 0 || *within > 24*time.Hour {
		return usagef(c.name, "drain: --within %v: want 0s to 24h", *within)
	}
	token, err := readAdminToken(c.name, *adminToken)
	if err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(pos[0]); err != nil && token != "" && !*https {
		// The address would come from a directory (a forged entry can
		// name any host), and the token would go to it in clear.
		return usagef(c.name, "drain: NODE %q is an ID: its HTTP address comes from the directory, and the admin token would go there in clear; add --https (with --ca and --tls-name), or name the node's HTTP address HOST:PORT", pos[0])
	}
	if *https {
		tf.on = true
	}
	// One trust for both: a node serving --http-tls serves the client
	// listener's certificate there too, so the service name it proves is
	// the same.
	tlsCfg, err := tf.config(c.name, *via)
	if err != nil {
		return err
	}
	var apiTLS *tls.Config
	if *https {
		apiTLS = tlsCfg
	}
	hc, scheme := apiClient(10*time.Second, apiTLS)
	nw := nodeWeb{hc: hc, scheme: scheme}
	httpAddr, err := nw.lookup(ctx, pos[0], *via, tlsCfg)
	if err != nil {
		return err
	}
	api := &drainAPI{base: scheme + httpAddr + "/v1/drain", token: token, hc: hc}
	if httpAddr == pos[0] {
		// HOST:PORT is the HTTP address, or the node's client address,
		// which is also its ID by default: what answers there says (a
		// GET changes nothing, and needs no token: none goes out until
		// the address is known to be the HTTP API).
		look := *api
		look.token = ""
		_, err := look.call(ctx, http.MethodGet, "")
		if errors.Is(err, errMisdirected) && *wait && !*undo {
			// The drain could start (POST needs the admin credential,
			// not a published name) but not be followed: say so first.
			return fmt.Errorf("%w; nothing was changed", err)
		}
		if notHTTP(err) {
			if token != "" && !*https {
				return usagef(c.name, "drain: NODE %s is a client address, not an HTTP API: the node's HTTP address would come from its directory, and the admin token would go there in clear; add --https (with --ca and --tls-name), or name the node's HTTP address (serve --http)", pos[0])
			}
			if httpAddr, err = nw.selfHTTP(ctx, pos[0], tlsCfg); err != nil {
				return err
			}
			api.base = scheme + httpAddr + "/v1/drain"
		}
	}
	if *undo {
		if _, err := api.call(ctx, http.MethodDelete, ""); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s admits sessions again\n", pos[0])
		return nil
	}
	st, err := api.call(ctx, http.MethodPost, "?within="+url.QueryEscape(within.String()))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "draining %s within %v: %d sessions, deadline %s\n", st.Node, *within, st.Total, st.Deadline.Format(time.TimeOnly))
	if !*wait {
		return nil
	}
	started := time.Now()
	// The node's loop ends by its deadline, with the sessions left closed
	// there: a node that still says draining well after the window (as
	// long from now as the node's deadline is from its start) has a loop
	// that no longer runs, and following it would never end. Measured by
	// this clock, which the node's need not agree with.
	window := *within
	if !st.Started.IsZero() && st.Deadline.After(st.Started) {
		window = st.Deadline.Sub(st.Started)
	}
	giveUp := started.Add(window + drainFollowGrace)
	last := ""
	for {
		if st.Done {
			fmt.Fprintf(stdout, "%s: drain ended (%s) after %.1fs: %d asked to move, %d closed at the deadline, %d sessions left\n",
				st.Node, st.Reason, time.Since(started).Seconds(), st.Asked, st.Closed, st.Sessions)
			return drainEnd(st.Reason)
		}
		line := fmt.Sprintf("%d of %d asked to move, %d sessions left", st.Asked, st.Total, st.Sessions)
		if st.Reasked > 0 {
			// Moves that failed, asked again (docs/protocol.md).
			line = fmt.Sprintf("%d of %d asked to move (%d asks again), %d sessions left", st.Asked, st.Total, st.Reasked, st.Sessions)
		}
		if line != last {
			fmt.Fprintf(stdout, "%s %s: %s\n", time.Now().Format(time.TimeOnly), st.Node, line)
			last = line
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("drain: stopped following the drain of %s (it goes on): %w", st.Node, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
		if st, err = api.call(ctx, http.MethodGet, ""); err != nil {
			return err
		}
		if !st.Paced || (!st.Draining && !st.Done) {
			return errors.New("drain: the node is no longer draining (DELETE /v1/drain, or it restarted)")
		}
		if !st.Done && time.Now().After(giveUp) {
			return fmt.Errorf("drain: %s still drains %v after its window of %v ended, with %d sessions left: stopped following (look at the node's log)", st.Node, drainFollowGrace, window, st.Sessions)
		}
	}
}

// drainFollowGrace is how long past the drain's window drain follows a
// node that has not said its drain ended.
var drainFollowGrace = 30 * time.Second

// nodeWeb finds a node's HTTP API from its ID or client address.
type nodeWeb struct {
	hc     *http.Client
	scheme string // "http://" or "https://", as the nodes' HTTP APIs speak
}

// lookup turns NODE into the node's HTTP address: NODE itself when it is
// HOST:PORT, else the HTTP address the directory at via lists for the
// node of that ID, asked over TLS with tlsCfg when it is not nil. A
// directory that is a sample of a larger one (a hello's view) and does
// not list the ID is read whole from the answering node's HTTP API.
func (w nodeWeb) lookup(ctx context.Context, name, via string, tlsCfg *tls.Config) (string, error) {
	if _, _, err := net.SplitHostPort(name); err == nil {
		return name, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var errs []error
	for _, addr := range splitList(via) {
		dir, err := client.FetchDirectoryTLS(ctx, nil, addr, tlsCfg)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if e, ok := entryOf(dir, name); ok {
			return httpOf(e)
		}
		if dir.Total > len(dir.Nodes) {
			self, ok := entryOf(dir, dir.Self)
			if !ok || self.HTTP == "" {
				return "", fmt.Errorf("drain: the directory of %s is a sample of %d nodes of %d without %q, and names no HTTP API to read the whole from", addr, len(dir.Nodes), dir.Total, name)
			}
			whole, err := w.directory(ctx, self.HTTP)
			if err != nil {
				return "", err
			}
			if e, ok := entryOf(whole, name); ok {
				return httpOf(e)
			}
		}
		return "", fmt.Errorf("drain: the directory of %s has no node %q", addr, name)
	}
	return "", fmt.Errorf("drain: asking %s for the directory: %w", via, errors.Join(errs...))
}

// selfHTTP is the HTTP address of the node whose client address is addr,
// as its own directory lists it.
func (w nodeWeb) selfHTTP(ctx context.Context, addr string, tlsCfg *tls.Config) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	dir, err := client.FetchDirectoryTLS(ctx, nil, addr, tlsCfg)
	if err != nil {
		return "", fmt.Errorf("drain: asking %s, not an HTTP API, for its directory: %w", addr, err)
	}
	e, ok := entryOf(dir, dir.Self)
	if !ok {
		return "", fmt.Errorf("drain: the node at %s does not list itself in its directory", addr)
	}
	return httpOf(e)
}

// directory reads the whole directory from the HTTP API at addr.
func (w nodeWeb) directory(ctx context.Context, addr string) (*wire.Directory, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.scheme+addr+"/v1/directory", nil)
	if err != nil {
		return nil, fmt.Errorf("drain: %w", err)
	}
	resp, err := w.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("drain: reading the directory from %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		if plainToHTTPS(resp, body) {
			return nil, fmt.Errorf("drain: reading the directory from %s: %s (%s)", addr, resp.Status, addHTTPS)
		}
		return nil, fmt.Errorf("drain: reading the directory from %s: %s", addr, resp.Status)
	}
	var m wire.Message
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&m); err != nil || m.Op != wire.OpDirectory {
		return nil, fmt.Errorf("drain: reading the directory from %s: not a directory (%v)", addr, err)
	}
	return m.Directory(), nil
}

// entryOf is dir's entry for the node id.
func entryOf(dir *wire.Directory, id string) (directory.Node, bool) {
	for _, n := range dir.Nodes {
		if n.ID == id {
			return n, true
		}
	}
	return directory.Node{}, false
}

// httpOf is e's HTTP address, or an error when it lists none.
func httpOf(e directory.Node) (string, error) {
	if e.HTTP == "" {
		return "", fmt.Errorf("drain: node %s lists no HTTP address (serve --http)", e.ID)
	}
	return e.HTTP, nil
}

// apiClient is the HTTP client for a node's HTTP API, bounded by
// timeout, and the scheme to call it with: HTTPS with tlsCfg when it is
// not nil, plain HTTP otherwise.
func apiClient(timeout time.Duration, tlsCfg *tls.Config) (*http.Client, string) {
	hc := &http.Client{Timeout: timeout}
	if tlsCfg == nil {
		return hc, "http://"
	}
	hc.Transport = &http.Transport{TLSClientConfig: tlsCfg, ForceAttemptHTTP2: true}
	return hc, "https://"
}

// readAdminToken reads the admin token in file for command cmd: "" when
// file is "".
func readAdminToken(cmd, file string) (string, error) {
	if file == "" {
		return "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s: reading the admin token: %w", cmd, err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		// Sent as none, the node would answer 401 for a token that was
		// never sent.
		return "", fmt.Errorf("%s: the admin token file %s (--admin-token) is empty: it must hold the node's admin token (serve --admin-token)", cmd, file)
	}
	return token, nil
}

// notHTTP reports whether err says that what answered does not speak
// HTTP (a node's client port answers with a protocol line).
func notHTTP(err error) bool {
	return err != nil && strings.Contains(err.Error(), "malformed HTTP")
}

// drainAPI calls a node's /v1/drain.
type drainAPI struct {
	base, token string
	hc          *http.Client
}

func (a *drainAPI) call(ctx context.Context, method, query string) (node.DrainStatus, error) {
	var st node.DrainStatus
	req, err := http.NewRequestWithContext(ctx, method, a.base+query, nil)
	if err != nil {
		return st, fmt.Errorf("drain: %w", err)
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		if strings.HasPrefix(a.base, "http://") && errors.Is(err, io.EOF) {
			// A TLS listener closes on a plain request's first bytes.
			return st, fmt.Errorf("drain: %w (does the node serve HTTPS, serve --http-tls? then add --https, with --ca and --tls-name to trust its certificate)", err)
		}
		return st, fmt.Errorf("drain: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return st, fmt.Errorf("drain: reading the answer of %s %s: %w", method, a.base, err)
	}
	if plainToHTTPS(resp, body) {
		return st, fmt.Errorf("drain: %s %s: %s: %s (%s)", method, a.base, resp.Status, strings.TrimSpace(string(body)), addHTTPS)
	}
	if resp.StatusCode == http.StatusMisdirectedRequest {
		return st, fmt.Errorf("drain: %s %s: %w: %s", method, a.base, errMisdirected, strings.TrimSpace(string(body)))
	}
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("drain: %s %s: %s: %s", method, a.base, resp.Status, strings.TrimSpace(string(body)))
	}
	if method == http.MethodDelete {
		return st, nil
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("drain: the answer of %s %s: %w", method, a.base, err)
	}
	return st, nil
}

// errMisdirected is a node's 421: its reads answer only under an
// address or a name the service publishes (docs/web.md).
var errMisdirected = errors.New("421 Misdirected Request")

// addHTTPS is what drain and probe say when a plain request reached a
// node serving its HTTP API over TLS.
const addHTTPS = "the node serves HTTPS, serve --http-tls: add --https, with --ca and --tls-name to trust its certificate"

// plainToHTTPS reports whether resp, with body, is how Go's HTTPS server
// answers a plain HTTP request (one that begins GET, POST, PUT, HEAD or
// OPTIONS; it closes on others, such as DELETE, unanswered).
func plainToHTTPS(resp *http.Response, body []byte) bool {
	return resp.StatusCode == http.StatusBadRequest &&
		strings.Contains(string(body), "Client sent an HTTP request to an HTTPS server")
}

// drainEnd is the command's result for a drain that ended for reason:
// nil when the node is as empty as draining could make it (empty, the
// deadline passed, or no other node was up to move to), an error when
// the drain was called off (DELETE /v1/drain) or the node stopped, so
// that a script restarting the node next (deploy/roll.sh) stops instead
// of dropping the sessions it still holds.
func drainEnd(reason string) error {
	switch reason {
	case "empty", "deadline", "alone":
		return nil
	}
	return fmt.Errorf("drain: the drain ended before the node was empty (%s): its sessions are still on it", reason)
}
