package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/pki"
	"github.com/switchboard/switchboard/internal/token"
	"github.com/switchboard/switchboard/wire"
)

// runCerts makes (or reuses) a dev CA in --dir and issues one node's
// certificate.
func runCerts(_ context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCmdline("certs", "--dir DIR --service NAME --node ID [--host HOST,...]",
		"Makes a development CA in DIR (ca.pem, ca.key; kept and reused when they exist)\n"+
			"and a certificate for one node, DIR/ID.pem and DIR/ID.key, naming the service\n"+
			"(which clients verify) and the node's own hosts. Give clients DIR/ca.pem (--ca)\n"+
			"and the node --tls-cert DIR/ID.pem --tls-key DIR/ID.key. Keep ca.key off the nodes.", stdout, stderr)
	fs := c.fs
	dir := fs.String("dir", "certs", "directory for the CA and the certificates")
	service := fs.String("service", node.DefaultService, "the service's common name, which clients verify: a DNS name, or an IP address")
	id := fs.String("node", "", "node ID: names the files (required)")
	hosts := fs.String("host", "", "the node's own host names and IP addresses, comma-separated (SANs besides the service name)")
	validity := fs.Duration("validity", pki.CertValidity, "how long the node certificate is valid (at least 1h)")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if err := c.noArgs(pos); err != nil {
		return err
	}
	if *id == "" || strings.ContainsAny(*id, `/\ `) || *id == "ca" {
		return usagef(c.name, "certs: --node must name the node (not empty, no slashes or spaces, not \"ca\")")
	}
	if *validity < pki.MinValidity {
		return usagef(c.name, "certs: --validity %v: want at least 1h", *validity)
	}
	// What the CA would refuse to sign, refused before anything is made.
	if err := (pki.Request{Service: *service}).Check(); err != nil {
		return usagef(c.name, "certs: --service: %v", err)
	}
	req := pki.Request{Service: *service, Hosts: splitList(*hosts), Validity: *validity}
	if err := req.Check(); err != nil {
		return usagef(c.name, "certs: --host: %v", err)
	}
	now := time.Now()
	certFile, keyFile := filepath.Join(*dir, *id+".pem"), filepath.Join(*dir, *id+".key")
	// Both or neither: a new key beside an old certificate would not match
	// it. A new CA is made in memory and written with them, so that a run
	// that fails leaves no CA behind.
	ca, files, err := pki.LoadOrNewCA(*dir, *service, now)
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	created := len(files) > 0
	chain, key, err := ca.Issue(req, now)
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	files = append(files, pki.NewFile{Name: keyFile, Data: key, Perm: 0o600}, pki.NewFile{Name: certFile, Data: chain, Perm: 0o644})
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return fmt.Errorf("certs: making %s: %w", *dir, err)
	}
	if err := pki.WriteNewFiles(files...); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if created {
		fmt.Fprintf(stdout, "made a CA: %s (give it to clients: --ca) and %s (keep it private)\n", filepath.Join(*dir, pki.CAFile), filepath.Join(*dir, pki.CAKeyFile))
	}
	fmt.Fprintf(stdout, "node %s: %s, %s for %s\n  switchboard serve --service %s --tls-cert %s --tls-key %s ...\n",
		*id, certFile, keyFile, strings.Join(append([]string{*service}, splitList(*hosts)...), ", "), *service, certFile, keyFile)
	return nil
}

// runKeygen makes the token signing key pair and an admin secret.
func runKeygen(_ context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCmdline("keygen", "--dir DIR",
		"Makes DIR/token.key (Ed25519, signs user tokens: keep it with the issuer),\n"+
			"DIR/token.pub (for the nodes: serve --token-key) and DIR/admin.token (a random\n"+
			"secret for serve --admin-token). Existing files are never replaced.", stdout, stderr)
	dir := c.fs.String("dir", "keys", "directory for the keys")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if err := c.noArgs(pos); err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	priv, pub, err := pki.NewSigningKey()
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return fmt.Errorf("keygen: drawing the admin secret: %w", err)
	}
	// All or none: a new token.key beside an old token.pub would mint
	// tokens that the nodes refuse.
	if err := pki.WriteNewFiles(
		pki.NewFile{Name: filepath.Join(*dir, "token.key"), Data: priv, Perm: 0o600},
		pki.NewFile{Name: filepath.Join(*dir, "token.pub"), Data: pub, Perm: 0o644},
		pki.NewFile{Name: filepath.Join(*dir, "admin.token"), Data: []byte(base64.RawURLEncoding.EncodeToString(secret) + "\n"), Perm: 0o600},
	); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	fmt.Fprintf(stdout, "made %[1]s/token.key (mint tokens: switchboard token --key %[1]s/token.key), %[1]s/token.pub (serve --token-key) and %[1]s/admin.token (serve --admin-token)\n", *dir)
	return nil
}

// runToken mints a user token.
func runToken(_ context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCmdline("token", "--key FILE --service NAME --user NAME [--ttl DURATION] [--rooms A,B]",
		"Prints a signed token (a JWT, EdDSA) naming the user, the service and an expiry,\n"+
			"and optionally the rooms the user may join. Clients send it with attach\n"+
			"(connect and chat: --token FILE).", stdout, stderr)
	fs := c.fs
	keyFile := fs.String("key", "", "the Ed25519 private key (PEM) from keygen (required)")
	service := fs.String("service", node.DefaultService, "the service's common name: the token is valid there only")
	user := fs.String("user", "", "the user the token names (required)")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	rooms := fs.String("rooms", "", "rooms the user may join, comma-separated (left out: any)")
	// SWITCHBOARD_TOKEN_ROOMS= is a --rooms that names no room, refused
	// below: taken as unset, it minted a token good in any room.
	c.emptyGiven = []string{"rooms"}
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if err := c.noArgs(pos); err != nil {
		return err
	}
	// As serve's: a misspelt SWITCHBOARD_TOKEN_ROOMS would mint a token
	// good in any room.
	if err := unknownTwins(c, os.Environ()); err != nil {
		return err
	}
	switch {
	case *keyFile == "":
		return usagef(c.name, "token: --key is required")
	case *user == "":
		return usagef(c.name, "token: --user is required")
	case *ttl <= 0:
		return usagef(c.name, "token: --ttl must be positive")
	}
	// An empty item named no room, and a token minted from a list with
	// none left would have no rooms claim: good in any room.
	if from, given := c.from["rooms"]; given {
		items := strings.Split(*rooms, ",")
		if slices.ContainsFunc(items, func(r string) bool { return strings.TrimSpace(r) == "" }) {
			if from != "--rooms" {
				return usagef(c.name, "token: %s=%q: every item must name a room (unset it, and leave --rooms out, for a token good in any room)", from, *rooms)
			}
			return usagef(c.name, "token: --rooms %q: every item must name a room (leave --rooms out for a token good in any room)", *rooms)
		}
		for _, r := range splitList(*rooms) {
			if why := wire.RoomNameProblem(r); why != "" {
				return usagef(c.name, "token: --rooms: %q: %s (no join could name it)", r, why)
			}
		}
	}
	key, err := pki.LoadSigningKey(*keyFile)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	now := time.Now()
	tok, err := token.Mint(key, token.Claims{User: *user, Service: *service, Expires: now.Add(*ttl), Rooms: splitList(*rooms)}, now)
	if errors.Is(err, token.ErrClaims) {
		// A user, rooms or a lifetime the flags gave that no node
		// would take: a usage error, as the flags' others are.
		return usagef(c.name, "%v", err)
	}
	if err != nil {
		return err // it says "token: ..."
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

// tlsFlags are the client commands' TLS flags.
type tlsFlags struct {
	ca   string
	on   bool
	name string
}

func (f *tlsFlags) register(c *cmdline) {
	c.fs.StringVar(&f.ca, "ca", "", "CA certificates (PEM) to trust for the nodes; turns TLS on")
	c.fs.BoolVar(&f.on, "tls", false, "speak TLS to the nodes, trusting the system's CAs (or --ca)")
	c.fs.StringVar(&f.name, "tls-name", "", "the service name the nodes' certificates must prove (default: the name in the address; needed when that is an IP)")
}

// config returns the TLS config for a service address, nil when TLS is
// off. ServerName is --tls-name or the name in addr.
func (f *tlsFlags) config(cmd, addr string) (*tls.Config, error) {
	if !f.on && f.ca == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.name}
	if f.ca != "" {
		pool, err := pki.LoadPool(f.ca)
		if err != nil {
			return nil, fmt.Errorf("%s: --ca: %w", cmd, err)
		}
		cfg.RootCAs = pool
	}
	if cfg.ServerName == "" {
		cfg.ServerName = serviceNameOf(addr)
	}
	if cfg.ServerName == "" {
		return nil, usagef(cmd, "%s: with TLS, name the service the nodes must prove: --tls-name (the address %q holds none)", cmd, addr)
	}
	return cfg, nil
}

// serviceNameOf is the host name in a service address (a name, dns:NAME,
// or HOST:PORT with HOST a name), or "" when it holds only IPs or several
// names.
func serviceNameOf(addr string) string {
	addr = strings.TrimPrefix(addr, "dns:")
	if strings.HasPrefix(addr, "//") {
		_, addr, _ = strings.Cut(strings.TrimPrefix(addr, "//"), "/")
	}
	name := ""
	for _, a := range splitList(addr) {
		host := a
		if h, _, err := net.SplitHostPort(a); err == nil {
			host = h
		}
		if net.ParseIP(host) != nil || (name != "" && host != name) {
			return ""
		}
		name = host
	}
	return strings.TrimSuffix(name, ".")
}
