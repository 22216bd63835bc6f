package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/config"
	"github.com/switchboard/switchboard/internal/dnsserver"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/pki"
)

// runArgs runs the command line args and returns its exit code and what
// the process would print, report's error line included.
func runArgs(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errs bytes.Buffer
	code = report(&errs, run(context.Background(), args, &out, &errs))
	return code, out.String(), errs.String()
}

func TestExitCodesAndHelp(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     []string // each must appear
		stderr     []string
		noStderr   []string // must not appear
		stderrRows int      // lines on stderr, when > 0
	}{
		{name: "no command", args: nil, code: 2, stderr: []string{"usage: switchboard COMMAND", "no command given"}},
		{name: "help", args: []string{"help"}, code: 0, stdout: []string{"usage: switchboard COMMAND", "SWITCHBOARD_SERVE_CAPACITY"}},
		{name: "--help", args: []string{"--help"}, code: 0, stdout: []string{"commands:"}},
		{name: "help serve", args: []string{"help", "serve"}, code: 0, stdout: []string{"usage: switchboard serve", "--max-rooms int", "env SWITCHBOARD_SERVE_MAX_ROOMS"}},
		{name: "serve -h", args: []string{"serve", "-h"}, code: 0, stdout: []string{"--config string", "--log-format string", "3 when three nodes are seen, or --join names two others"}},
		{name: "connect --help", args: []string{"connect", "--help"}, code: 0, stdout: []string{"env SWITCHBOARD_CONNECT_SERVICE"}},
		{name: "bench -h", args: []string{"bench", "-h"}, code: 0, stdout: []string{"scenarios:", "SWITCHBOARD_BENCH_"}},
		{name: "bench storm -h", args: []string{"bench", "storm", "-h"}, code: 0, stdout: []string{"usage: switchboard bench storm", "env SWITCHBOARD_BENCH_CLIENTS"}},
		{name: "sim -h", args: []string{"sim", "-h"}, code: 0, stdout: []string{"--kill-at duration", "env SWITCHBOARD_SIM_NODES"}},
		{name: "chat -h", args: []string{"chat", "-h"}, code: 0, stdout: []string{"usage: switchboard chat --service ADDR --user NAME [flags] ROOM"}},
		{name: "bench without scenario", args: []string{"bench"}, code: 2, stderr: []string{"scenarios:", "name a scenario"}},
		{name: "unknown command", args: []string{"serv"}, code: 2, stderr: []string{`unknown command "serv"`, "switchboard help"}, stderrRows: 2},
		{name: "unknown scenario", args: []string{"bench", "storms"}, code: 2, stderr: []string{`unknown scenario "storms"`}, stderrRows: 2},
		{
			name: "bad flag: the error once and a hint", args: []string{"serve", "--bogus"}, code: 2,
			stderr:   []string{"switchboard: serve: flag provided but not defined: --bogus\n", "Run 'switchboard serve -h' for its flags.\n"},
			noStderr: []string{"usage:", "--capacity"}, stderrRows: 2,
		},
		{
			name: "bad value", args: []string{"serve", "--feed-heartbeat", "100ms"}, code: 2,
			stderr: []string{`invalid value "100ms" for flag --feed-heartbeat: 100ms is below 500ms`}, stderrRows: 2,
		},
		{
			name: "a rate that is not a number", args: []string{"serve", "--chunk-rate", "NaN", "--check"}, code: 2,
			stderr: []string{`invalid value "NaN" for flag --chunk-rate: "NaN" is not a finite number`}, stderrRows: 2,
		},
		// The flag package's errors name flags with two dashes, as -h does.
		{name: "a flag without its value", args: []string{"dir", "--via"}, code: 2, stderr: []string{"switchboard: dir: flag needs an argument: --via\n"}, stderrRows: 2},
		{name: "a bad boolean", args: []string{"serve", "--check=maybe"}, code: 2, stderr: []string{`switchboard: serve: invalid boolean value "maybe" for --check: `}, stderrRows: 2},
		{name: "a single-dash unknown flag", args: []string{"token", "-nope"}, code: 2, stderr: []string{"switchboard: token: flag provided but not defined: --nope\n"}, stderrRows: 2},
		{
			name: "probe's arguments are for --caught-up", args: []string{"probe", "127.0.0.1:7071"}, code: 2,
			stderr: []string{`probe: unexpected argument "127.0.0.1:7071": HTTP addresses go with --caught-up; name the node to ask whether it is ready with --http`}, stderrRows: 2,
		},
		{name: "drain without a node", args: []string{"drain"}, code: 2, stderr: []string{"switchboard: drain: want one NODE"}, stderrRows: 2},
		// The -h line names the command run: it named "client", which is
		// none.
		{name: "connect with TLS and no name to prove", args: []string{"connect", "--service", "127.0.0.1:1", "--tls"}, code: 2, stderr: []string{"switchboard: connect: with TLS, name the service", "Run 'switchboard connect -h' for its flags.\n"}, stderrRows: 2},
		{name: "drain with a bad window", args: []string{"drain", "n1", "--within", "25h"}, code: 2, stderr: []string{"switchboard: drain: --within 25h0m0s"}, stderrRows: 2},
		// A port the nodes could not use is a usage error naming the flag,
		// not a node's "bad port" for an address the user never gave.
		{name: "demo's port leaves no room for HTTP", args: []string{"demo", "--port", "65535"}, code: 2, stderr: []string{"demo: --port 65535 is outside 1..65533"}, stderrRows: 2},
		{name: "demo's port leaves no room for the cluster", args: []string{"demo", "--port", "65534"}, code: 2, stderr: []string{"demo: --port 65534 is outside 1..65533"}, stderrRows: 2},
		{name: "demo's port below 1", args: []string{"demo", "--port", "0"}, code: 2, stderr: []string{"demo: --port 0 is outside 1..65533"}, stderrRows: 2},
		{name: "demo's DNS port", args: []string{"demo", "--dns-port", "70000"}, code: 2, stderr: []string{"demo: --dns-port 70000 is outside 1..65535"}, stderrRows: 2},
		{
			// Clients send lines up to wire.MaxLine: a node reading less
			// would end sessions within every limit it announced.
			name: "a line limit below the protocol's", args: []string{"serve", "--max-line", "2000", "--check"}, code: 1,
			stderr: []string{"max line 2000 below the protocol's 65536 bytes"},
		},
		{
			name: "--check says what the DNS responder would refuse at start", args: []string{"serve", "--dns", "127.0.0.1:0", "--dns-ttl", "500ms", "--check"}, code: 1,
			stderr: []string{"TTL 500ms is below 1s"},
		},
		{
			name: "argument before flags is not silently dropped", args: []string{"connect", "extra", "--service", "127.0.0.1:1"}, code: 2,
			stderr: []string{`connect: unexpected argument "extra"`}, stderrRows: 2,
		},
		{name: "arguments after flags", args: []string{"serve", "--capacity", "3", "now", "please"}, code: 2, stderr: []string{`serve: unexpected arguments "now please"`}},
		{name: "dir argument", args: []string{"dir", "127.0.0.1:7070"}, code: 2, stderr: []string{`dir: unexpected argument "127.0.0.1:7070"`}},
		{name: "chat needs a user", args: []string{"chat", "lobby"}, code: 2, stderr: []string{"chat: --user is required"}},
		{name: "chat needs one room", args: []string{"chat", "--user", "ann", "lobby", "hall"}, code: 2, stderr: []string{`unexpected arguments "hall" after the room "lobby"`}},
		{name: "chat with no room", args: []string{"chat", "--user", "ann"}, code: 2, stderr: []string{"name the ROOM"}},
		{name: "chat with a bad room name", args: []string{"chat", "--user", "ann", "lob by"}, code: 2, stderr: []string{`chat: room "lob by": room names hold only letters`}, stderrRows: 2},
		{name: "bad log format", args: []string{"serve", "--log-format", "xml", "--check"}, code: 2, stderr: []string{`--log-format "xml": want text or json`}},
		{name: "bad policy", args: []string{"connect", "--policy", "fastest"}, code: 2, stderr: []string{"connect: --policy"}},
		{name: "version", args: []string{"version"}, code: 0, stdout: []string{"switchboard "}},
		{name: "--version", args: []string{"--version"}, code: 0, stdout: []string{"switchboard "}},
		{name: "version takes no argument", args: []string{"version", "x"}, code: 2},
		{
			name: "cluster without a secret", args: []string{"serve", "--cluster", "127.0.0.1:7092", "--check"}, code: 1,
			stderr:   []string{"cluster-secret-file", "cluster-cert", "insecure-cluster"},
			noStderr: []string{"InsecureCluster", "Insecure to"},
		},
		{name: "missing config file is a failure", args: []string{"serve", "--config", "/nonexistent/sb.toml", "--check"}, code: 1, stderr: []string{"/nonexistent/sb.toml"}},
		{name: "a dial that fails is a failure", args: []string{"dir", "--via", "127.0.0.1:1", "--timeout", "2s"}, code: 1, stderr: []string{"dir:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("HOME", t.TempDir())
			code, stdout, stderr := runArgs(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout, stderr)
			}
			for _, w := range tt.stdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			for _, w := range tt.stderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			for _, w := range tt.noStderr {
				if strings.Contains(stderr, w) {
					t.Errorf("stderr has %q:\n%s", w, stderr)
				}
			}
			if n := strings.Count(stderr, "\n"); tt.stderrRows > 0 && n != tt.stderrRows {
				t.Errorf("stderr has %d lines, want %d:\n%s", n, tt.stderrRows, stderr)
			}
		})
	}
}

// Flags may follow positional arguments, and "--" ends the flags.
func TestInterspersedArguments(t *testing.T) {
	tests := []struct {
		args    []string
		wantPos []string
		wantX   int
	}{
		{[]string{"--x", "1", "room"}, []string{"room"}, 1},
		{[]string{"room", "--x", "2"}, []string{"room"}, 2},
		{[]string{"a", "--x", "3", "b"}, []string{"a", "b"}, 3},
		{[]string{"--x", "4", "--", "--x", "5"}, []string{"--x", "5"}, 4},
		{[]string{"a", "--", "-b"}, []string{"a", "-b"}, 0},
	}
	for _, tt := range tests {
		c := newCmdline("test", "", "", &bytes.Buffer{}, &bytes.Buffer{})
		x := c.fs.Int("x", 0, "")
		pos, err := c.parse(tt.args)
		if err != nil {
			t.Fatalf("parse(%q): %v", tt.args, err)
		}
		if !slices.Equal(pos, tt.wantPos) || *x != tt.wantX {
			t.Errorf("parse(%q) = %q, x=%d; want %q, x=%d", tt.args, pos, *x, tt.wantPos, tt.wantX)
		}
	}
}

// Environment twins are per command: a serve setting does not leak into
// sim, and the global twins of old are ignored with a warning.
func TestEnvironmentTwins(t *testing.T) {
	tests := []struct {
		name    string
		command string
		env     map[string]string
		args    []string
		want    int
		warn    string
		wantErr string
	}{
		{name: "default", command: "serve", want: 100},
		{name: "serve's twin", command: "serve", env: map[string]string{"SWITCHBOARD_SERVE_CAPACITY": "7"}, want: 7},
		{name: "the command line wins", command: "serve", env: map[string]string{"SWITCHBOARD_SERVE_CAPACITY": "7"}, args: []string{"--capacity", "9"}, want: 9},
		{name: "another command's twin does not leak", command: "sim", env: map[string]string{"SWITCHBOARD_SERVE_CAPACITY": "7"}, want: 100},
		{name: "subcommands share the command's", command: "bench storm", env: map[string]string{"SWITCHBOARD_BENCH_CAPACITY": "8"}, want: 8},
		{name: "an empty twin counts as unset", command: "serve", env: map[string]string{"SWITCHBOARD_SERVE_CAPACITY": ""}, want: 100, warn: "SWITCHBOARD_SERVE_CAPACITY is empty: ignored"},
		{name: "global twin ignored", command: "serve", env: map[string]string{"SWITCHBOARD_CAPACITY": "7"}, want: 100, warn: "SWITCHBOARD_CAPACITY is ignored: environment twins are per command; use SWITCHBOARD_SERVE_CAPACITY"},
		{name: "bad value names the variable", command: "serve", env: map[string]string{"SWITCHBOARD_SERVE_CAPACITY": "many"}, wantErr: `serve: SWITCHBOARD_SERVE_CAPACITY="many": invalid value for --capacity`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stderr bytes.Buffer
			c := newCmdline(tt.command, "", "", &bytes.Buffer{}, &stderr)
			capacity := c.fs.Int("capacity", 100, "")
			_, err := c.parse(tt.args)
			if tt.wantErr != "" {
				var ue *usageError
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.As(err, &ue) {
					t.Fatalf("err = %v, want a usage error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *capacity != tt.want {
				t.Errorf("capacity = %d, want %d", *capacity, tt.want)
			}
			if !strings.Contains(stderr.String(), tt.warn) || (tt.warn == "" && stderr.Len() > 0) {
				t.Errorf("stderr %q, want %q", stderr.String(), tt.warn)
			}
		})
	}
}

// A global twin of old that is also another command's own twin is no
// mistake: SWITCHBOARD_TOKEN_KEY, set for token --key (the signing key),
// was taken by serve for the old twin of its --token-key, and serve
// warned to use SWITCHBOARD_SERVE_TOKEN_KEY, which would have given it
// the private key.
func TestAnotherCommandsTwinIsNoOldTwin(t *testing.T) {
	t.Setenv("SWITCHBOARD_TOKEN_KEY", "keys/token.key")
	var stderr bytes.Buffer
	c := newCmdline("serve", "", "", &bytes.Buffer{}, &stderr)
	key := c.fs.String("token-key", "", "")
	if _, err := c.parse(nil); err != nil {
		t.Fatal(err)
	}
	if *key != "" || stderr.Len() > 0 {
		t.Errorf("serve with token's SWITCHBOARD_TOKEN_KEY set: --token-key %q, stderr %q; want neither", *key, stderr.String())
	}
}

// The warning for an empty twin says where the flag's value comes from
// instead: a config file only for serve, the one command that reads one.
func TestEmptyTwinSaysWhereTheFlagComesFrom(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("SWITCHBOARD_SERVE_CAPACITY", "")
	t.Setenv("SWITCHBOARD_TOKEN_TTL", "")
	if _, _, stderr := runArgs(t, "serve", "--check"); !strings.Contains(stderr, "SWITCHBOARD_SERVE_CAPACITY is empty: ignored, as if unset (--capacity comes from the command line, the config file or its default)\n") {
		t.Errorf("serve's warning:\n%s", stderr)
	}
	_, _, stderr := runArgs(t, "token")
	if !strings.Contains(stderr, "SWITCHBOARD_TOKEN_TTL is empty: ignored, as if unset (--ttl comes from the command line or its default)\n") || strings.Contains(stderr, "config file") {
		t.Errorf("token's warning names a config file it does not read:\n%s", stderr)
	}
}

// A SWITCHBOARD_SERVE_ variable that names no flag is an error (exit 2)
// naming it and the twin it likely meant, as an unknown key of the file
// is. It used to be ignored without a word: a misspelt token key left
// the node's users unauthenticated.
func TestUnknownEnvironmentTwin(t *testing.T) {
	tests := []struct {
		name, key, want string
	}{
		{"a typo of a security setting", "SWITCHBOARD_SERVE_TOKENKEY", "SWITCHBOARD_SERVE_TOKENKEY is not a setting of serve (did you mean SWITCHBOARD_SERVE_TOKEN_KEY?)"},
		{"a suffix the twin does not have", "SWITCHBOARD_SERVE_ADMIN_TOKEN_FILE", "SWITCHBOARD_SERVE_ADMIN_TOKEN_FILE is not a setting of serve (did you mean SWITCHBOARD_SERVE_ADMIN_TOKEN?)"},
		{"lower case", "SWITCHBOARD_SERVE_capacity", "SWITCHBOARD_SERVE_capacity is not a setting of serve (did you mean SWITCHBOARD_SERVE_CAPACITY?)"},
		{"far from any", "SWITCHBOARD_SERVE_FROBNICATE", "SWITCHBOARD_SERVE_FROBNICATE is not a setting of serve\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("HOME", t.TempDir())
			t.Setenv(tt.key, "/etc/switchboard/token.pub")
			code, _, stderr := runArgs(t, "serve", "--check")
			if code != exitUsage || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and %q", code, stderr, exitUsage, tt.want)
			}
		})
	}
	// Other commands' twins and other programs' variables are not serve's
	// business.
	t.Setenv("HOME", t.TempDir())
	t.Setenv("SWITCHBOARD_CONNECT_SERVICE", "127.0.0.1:1")
	t.Setenv("SWITCHBOARD_SERVEX", "1")
	if code, _, stderr := runArgs(t, "serve", "--check"); code != exitOK {
		t.Errorf("serve --check beside other variables: exit %d\n%s", code, stderr)
	}
}

// serve --check prints its settings for pasting into tickets and CI logs:
// never the credentials in a URL (bus-system's user of the system
// account, kept out of ps in the environment for that reason).
func TestCheckHidesCredentials(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("SWITCHBOARD_SERVE_BUS_SYSTEM", "nats://sys:s3cret-sys@127.0.0.1:4222,nats://sys:s3cret-sys@127.0.0.2:4222")
	code, stdout, stderr := runArgs(t, "serve", "--bus", "nats://t0ken-secret@127.0.0.1:4222", "--check")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	for _, secret := range []string{"s3cret-sys", "t0ken-secret"} {
		if strings.Contains(stdout, secret) {
			t.Errorf("--check shows %q:\n%s", secret, stdout)
		}
	}
	for _, want := range []string{
		`"nats://sys:xxxxx@127.0.0.1:4222,nats://sys:xxxxx@127.0.0.2:4222" from SWITCHBOARD_SERVE_BUS_SYSTEM`,
		`"nats://xxxxx@127.0.0.1:4222" from --bus`,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("--check lacks %q:\n%s", want, stdout)
		}
	}
	// Nor the error about a URL mistyped.
	code, stdout, stderr = runArgs(t, "serve", "--bus", "natss://app:s3cret-typo@127.0.0.1:4222", "--check")
	if code == exitOK || strings.Contains(stdout+stderr, "s3cret-typo") || !strings.Contains(stderr, "not a list of nats:// or tls:// URLs") {
		t.Errorf("exit %d with a mistyped --bus, want an error without its password:\n%s%s", code, stdout, stderr)
	}
	// Nor an item without a scheme (nats.go would take it), in either
	// setting, nor a password with a space or a comma in it.
	for _, tt := range []struct{ env, bus string }{
		{"", "nats://127.0.0.1:4222,app:s3cret-bare@127.0.0.1:4223"},
		{"sys:s3cret-bare@127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"", "nats://app:s3cret pw@127.0.0.1:4222"},
		{"", "nats://app:s3cret,pw@127.0.0.1:4222"},
	} {
		t.Setenv("SWITCHBOARD_SERVE_BUS_SYSTEM", tt.env)
		code, stdout, stderr = runArgs(t, "serve", "--bus", tt.bus, "--check")
		if code == exitOK || strings.Contains(stdout+stderr, "s3cret") {
			t.Errorf("--bus %q, bus-system %q: exit %d, want an error without the password:\n%s%s", tt.bus, tt.env, code, stdout, stderr)
		}
	}
}

// certs writes a node's certificate and key together or not at all, and
// keygen its three files: a certificate left without its key (deleted, or
// a run interrupted) used to get a fresh key written beside it that did
// not match it, before certs refused the certificate; the node then
// refused to start with that pair, and every later run refused the key.
func TestCertsAndKeygenWriteAllOrNone(t *testing.T) {
	dir := t.TempDir()
	certs := []string{"certs", "--dir", dir, "--service", "chat.test", "--node", "n1", "--host", "127.0.0.1"}
	if code, _, stderr := runArgs(t, certs...); code != exitOK {
		t.Fatalf("certs: exit %d\n%s", code, stderr)
	}
	cert, key := filepath.Join(dir, "n1.pem"), filepath.Join(dir, "n1.key")
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := pair.Leaf.VerifyHostname("chat.test"); err != nil {
		t.Errorf("the certificate does not name the service: %v", err)
	}
	for _, f := range []string{key, filepath.Join(dir, "ca.key")} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", f, err, fi.Mode().Perm())
		}
	}
	if err := os.Remove(key); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runArgs(t, certs...)
	if code != exitFailure || !strings.Contains(stderr, cert+" exists") {
		t.Errorf("certs beside a certificate without its key: exit %d, stderr %q; want 1 naming %s", code, stderr, cert)
	}
	if _, err := os.Stat(key); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("certs wrote a key that does not match the certificate beside it (%v)", err)
	}

	keys := t.TempDir()
	if err := os.WriteFile(filepath.Join(keys, "token.pub"), []byte("the nodes' key"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := runArgs(t, "keygen", "--dir", keys); code != exitFailure {
		t.Errorf("keygen beside a token.pub: exit %d, want 1", code)
	}
	for _, f := range []string{"token.key", "admin.token"} {
		if _, err := os.Stat(filepath.Join(keys, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("keygen beside a token.pub wrote %s (%v)", f, err)
		}
	}
}

// A certs run that fails writes nothing: bad flag values are usage errors
// found before the CA is made, and a new CA is written only with the
// node's files. Such runs used to leave a new ca.key and ca.pem behind.
func TestCertsFailedRunWritesNothing(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"a host with a space", []string{"--host", "bad host"}, exitUsage, `certs: --host: pki: host "bad host"`},
		{"a host with a port", []string{"--host", "127.0.0.1,n1.example:7070"}, exitUsage, `certs: --host: pki: host "n1.example:7070"`},
		{"a negative validity", []string{"--validity", "-1h"}, exitUsage, "certs: --validity -1h0m0s: want at least 1h"},
		{"no validity", []string{"--validity", "0s"}, exitUsage, "certs: --validity 0s: want at least 1h"},
		{"a validity under an hour", []string{"--validity", "1ns"}, exitUsage, "certs: --validity 1ns: want at least 1h"},
		{"a service with a space", []string{"--service", "chat test"}, exitUsage, `certs: --service: pki: service name "chat test"`},
		{"a service with a port", []string{"--service", "chat.local:7070"}, exitUsage, `certs: --service: pki: service name "chat.local:7070": want a DNS name or an IP address`},
		// Known only once the CA is: past a new CA's ten years.
		{"a certificate that outlives its CA", []string{"--validity", "100000h"}, exitFailure, "would outlive its CA"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "certs")
			args := append([]string{"certs", "--dir", dir, "--service", "chat.test", "--node", "n1"}, tt.args...)
			code, stdout, stderr := runArgs(t, args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d and %q", code, stderr, tt.code, tt.want)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if entries, err := os.ReadDir(dir); !errors.Is(err, os.ErrNotExist) {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Errorf("the failed run left %s with %q (%v), want no directory", dir, names, err)
			}
		})
	}
	// With a CA there already, a failed run leaves it as it was.
	dir := t.TempDir()
	if code, _, stderr := runArgs(t, "certs", "--dir", dir, "--service", "chat.test", "--node", "n1"); code != exitOK {
		t.Fatalf("certs: %s", stderr)
	}
	if code, _, _ := runArgs(t, "certs", "--dir", dir, "--service", "chat.test", "--node", "n2", "--validity", "100000h"); code != exitFailure {
		t.Errorf("a certificate past the CA's end: exit %d, want 1", code)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"ca.key", "ca.pem", "n1.key", "n1.pem"}; !slices.Equal(names, want) {
		t.Errorf("after a failed run %s holds %q, want %q", dir, names, want)
	}
}

// token --rooms names the rooms the token allows: a list with no room in
// it, or an empty item, is a usage error. It used to drop the empty items
// and mint a token without the claim, which allows every room.
func TestTokenRoomsNameRooms(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	keys := t.TempDir()
	if code, _, stderr := runArgs(t, "keygen", "--dir", keys); code != exitOK {
		t.Fatalf("keygen: %s", stderr)
	}
	mint := []string{"token", "--key", filepath.Join(keys, "token.key"), "--service", "chat.test", "--user", "ann"}
	for _, rooms := range []string{",", " , ", "", "lobby,,ops", "lobby, "} {
		code, stdout, stderr := runArgs(t, append(mint, "--rooms", rooms)...)
		if code != exitUsage || stdout != "" || !strings.Contains(stderr, fmt.Sprintf("token: --rooms %q: every item must name a room", rooms)) {
			t.Errorf("--rooms %q: exit %d, stdout %q, stderr:\n%s\nwant exit 2, no token, and why", rooms, code, stdout, stderr)
		}
	}
	// So is a user no node takes (longer than 64 bytes), which Mint
	// refuses: it was a failure (exit 1).
	if code, stdout, stderr := runArgs(t, "token", "--key", filepath.Join(keys, "token.key"), "--service", "chat.test", "--user", strings.Repeat("u", 65)); code != exitUsage || stdout != "" {
		t.Errorf("--user of 65 bytes: exit %d, stdout %q, stderr:\n%s\nwant exit 2 and no token", code, stdout, stderr)
	}
	// A room no join could name is a usage error too, not a failure to
	// mint.
	for _, rooms := range []string{"my room", "lobby,ops/2"} {
		code, stdout, stderr := runArgs(t, append(mint, "--rooms", rooms)...)
		if code != exitUsage || stdout != "" || !strings.Contains(stderr, "no join could name it") {
			t.Errorf("--rooms %q: exit %d, stdout %q, stderr:\n%s\nwant exit 2, no token, and why", rooms, code, stdout, stderr)
		}
	}
	t.Setenv("SWITCHBOARD_TOKEN_ROOMS", ",")
	if code, stdout, _ := runArgs(t, mint...); code != exitUsage || stdout != "" {
		t.Errorf("SWITCHBOARD_TOKEN_ROOMS=\",\": exit %d, stdout %q; want exit 2 and no token", code, stdout)
	}
	// Set empty, it is an empty --rooms, refused as that is: it used to
	// count as unset, and the token was good in any room.
	t.Setenv("SWITCHBOARD_TOKEN_ROOMS", "")
	if code, stdout, stderr := runArgs(t, mint...); code != exitUsage || stdout != "" || !strings.Contains(stderr, `token: SWITCHBOARD_TOKEN_ROOMS="": every item must name a room`) {
		t.Errorf("SWITCHBOARD_TOKEN_ROOMS=\"\": exit %d, stdout %q, stderr:\n%s\nwant exit 2, no token, and why", code, stdout, stderr)
	}
	// The command line wins over it, as over any twin.
	if code, stdout, stderr := runArgs(t, append(mint, "--rooms", "lobby, ops")...); code != exitOK || stdout == "" {
		t.Errorf("--rooms over an empty twin: exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
	// A misspelt twin is refused, as serve's are: SWITCHBOARD_TOKEN_ROOM
	// was ignored, and the token good in any room.
	os.Unsetenv("SWITCHBOARD_TOKEN_ROOMS")
	t.Setenv("SWITCHBOARD_TOKEN_ROOM", "lobby")
	if code, stdout, stderr := runArgs(t, mint...); code != exitUsage || stdout != "" || !strings.Contains(stderr, "SWITCHBOARD_TOKEN_ROOM is not a setting of token (did you mean SWITCHBOARD_TOKEN_ROOMS?)") {
		t.Errorf("SWITCHBOARD_TOKEN_ROOM: exit %d, stdout %q, stderr:\n%s\nwant exit 2, no token, and the twin meant", code, stdout, stderr)
	}
}

// The config file is below the environment, which is below the command
// line; each setting says where it came from.
func TestServePrecedence(t *testing.T) {
	file := writeFile(t, "sb.toml", "capacity = 10\nmax-rooms = 20\nstore-timeout = \"20s\"\njoin = [\"10.0.0.1:7072\", \"10.0.0.2:7072\"]\n")
	tests := []struct {
		name      string
		env       map[string]string
		args      []string
		capacity  int
		maxRooms  int
		storeFrom string
	}{
		{name: "file", args: []string{"--config", file}, capacity: 10, maxRooms: 20, storeFrom: file + ":3: store-timeout"},
		{name: "environment over file", env: map[string]string{"SWITCHBOARD_SERVE_CAPACITY": "11", "SWITCHBOARD_SERVE_STORE_TIMEOUT": "3s"}, args: []string{"--config", file}, capacity: 11, maxRooms: 20, storeFrom: "SWITCHBOARD_SERVE_STORE_TIMEOUT"},
		{name: "flag over environment", env: map[string]string{"SWITCHBOARD_SERVE_CAPACITY": "11"}, args: []string{"--config", file, "--capacity", "12", "--store-timeout", "4s"}, capacity: 12, maxRooms: 20, storeFrom: "--store-timeout"},
		{name: "config path from the environment", env: map[string]string{"SWITCHBOARD_SERVE_CONFIG": file}, capacity: 10, maxRooms: 20, storeFrom: file + ":3: store-timeout"},
		{name: "no file", capacity: 10000, maxRooms: 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("HOME", t.TempDir())
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var s serveSettings
			c, err := loadServe(&s, tt.args, &bytes.Buffer{}, &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if s.cfg.Capacity != tt.capacity || s.cfg.MaxRooms != tt.maxRooms {
				t.Errorf("capacity, max-rooms = %d, %d; want %d, %d", s.cfg.Capacity, s.cfg.MaxRooms, tt.capacity, tt.maxRooms)
			}
			if got := c.from["store-timeout"]; got != tt.storeFrom {
				t.Errorf("store-timeout from %q, want %q", got, tt.storeFrom)
			}
			if tt.capacity == 10 && !slices.Equal(s.cfg.Join, []string{"10.0.0.1:7072", "10.0.0.2:7072"}) {
				t.Errorf("join = %q", s.cfg.Join)
			}
		})
	}
}

// The example file documents every setting, and serve --check accepts it.
// --check reads the files the settings name, as the node does at start,
// so the example's /etc/switchboard/ is a directory of real ones here.
func TestExampleConfig(t *testing.T) {
	const example = "../../docs/switchboard.example.toml"
	t.Setenv("HOME", t.TempDir())
	data, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	etc := t.TempDir()
	now := time.Now()
	ca, _, err := pki.LoadOrCreateCA(etc, "chat.example", now)
	if err != nil {
		t.Fatal(err)
	}
	chain, key, err := ca.Issue(pki.Request{Service: "chat.example", Hosts: []string{"127.0.0.1"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteNewFiles(pki.NewFile{Name: filepath.Join(etc, "n1.key"), Data: key, Perm: 0o600}, pki.NewFile{Name: filepath.Join(etc, "n1.pem"), Data: chain, Perm: 0o644}); err != nil {
		t.Fatal(err)
	}
	local := writeFile(t, "switchboard.toml", strings.ReplaceAll(string(data), "/etc/switchboard/", etc+"/"))
	code, stdout, stderr := runArgs(t, "serve", "--config", local, "--check")
	if code != 0 {
		t.Fatalf("serve --check of the example: exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "settings are valid") {
		t.Errorf("--check printed:\n%s", stdout)
	}
	var s serveSettings
	c := serveCmdline(&s, nil, nil)
	for _, key := range fileKeys(c) {
		if !strings.Contains(string(data), "\n"+key+" =") && !strings.Contains(string(data), "\n# "+key+" =") {
			t.Errorf("the example file does not show %q", key)
		}
	}
	// Its header says its values are the defaults but for the node's own.
	own := []string{"service", "id", "group", "data", "cluster", "cluster-cert", "cluster-key", "cluster-ca"}
	f, err := config.Parse(example, data, fileKeys(c))
	if err != nil {
		t.Fatal(err)
	}
	same := func(a, b string) bool {
		d1, err1 := time.ParseDuration(a)
		d2, err2 := time.ParseDuration(b)
		return a == b || (err1 == nil && err2 == nil && d1 == d2)
	}
	for _, set := range f.Settings {
		fl := c.fs.Lookup(set.Key)
		def := fl.DefValue
		if m := regexp.MustCompile(`\(default ([^)]+)\)`).FindStringSubmatch(fl.Usage); m != nil {
			def = m[1] // 0 standing for the node's default, which the usage gives
		}
		if !slices.Contains(own, set.Key) && !same(set.Text, fl.DefValue) && !same(set.Text, def) {
			t.Errorf("%s: %q is not the default, %q", f.Where(set), set.Text, def)
		}
	}
}

// --check reads the certificate files of the routes and of an external
// bus, as the node does at start. It used to call a node valid whose
// cluster certificate was missing, or whose key was another
// certificate's, and the node then failed at start.
func TestCheckReadsCertificateFiles(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	dir := t.TempDir()
	for _, node := range []string{"n1", "n2"} {
		if code, _, stderr := runArgs(t, "certs", "--dir", dir, "--service", "chat.test", "--node", node, "--host", "127.0.0.1"); code != exitOK {
			t.Fatalf("certs: %s", stderr)
		}
	}
	f := func(name string) string { return filepath.Join(dir, name) }
	missing := filepath.Join(dir, "none.pem")
	cluster := []string{"--cluster", "127.0.0.1:0", "--cluster-ca", f("ca.pem")}
	tests := []struct {
		name string
		args []string
		want string // "" for valid
	}{
		{"cluster: a matching pair", append([]string{"--cluster-cert", f("n1.pem"), "--cluster-key", f("n1.key")}, cluster...), ""},
		{"cluster: the key of another certificate", append([]string{"--cluster-cert", f("n1.pem"), "--cluster-key", f("n2.key")}, cluster...), "cluster TLS certificate (cluster-cert, cluster-key): tls: private key does not match public key"},
		{"cluster: no certificate file", append([]string{"--cluster-cert", missing, "--cluster-key", f("n1.key")}, cluster...), "cluster TLS certificate (cluster-cert, cluster-key): open " + missing},
		{"cluster: a CA file without a certificate", []string{"--cluster", "127.0.0.1:0", "--cluster-cert", f("n1.pem"), "--cluster-key", f("n1.key"), "--cluster-ca", f("n1.key")}, "cluster CA (cluster-ca): pki:"},
		{"bus: no CA file", []string{"--bus", "tls://127.0.0.1:4222", "--bus-ca", missing}, "bus CA (bus-ca): pki: reading CA certificates: open " + missing},
		{"bus: the key of another certificate", []string{"--bus", "tls://127.0.0.1:4222", "--bus-cert", f("n1.pem"), "--bus-key", f("n2.key")}, "bus certificate (bus-cert, bus-key): tls: private key does not match public key"},
		// Start refuses one without the other: --check must too.
		{"bus: a certificate without its key", []string{"--bus", "tls://127.0.0.1:4222", "--bus-cert", f("n1.pem")}, "needs both bus-cert and bus-key"},
		{"bus: a key without its certificate", []string{"--bus", "tls://127.0.0.1:4222", "--bus-key", f("n1.key")}, "needs both bus-cert and bus-key"},
		{"bus: no credentials file", []string{"--bus", "nats://127.0.0.1:4222", "--bus-creds", missing}, "bus credentials (bus-creds): open " + missing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runArgs(t, append([]string{"serve", "--check"}, tt.args...)...)
			switch {
			case tt.want == "" && code != exitOK:
				t.Errorf("exit %d, want 0\n%s%s", code, stdout, stderr)
			case tt.want != "" && (code != exitFailure || !strings.Contains(stderr, tt.want)):
				t.Errorf("exit %d, stderr:\n%s\nwant exit 1 and %q", code, stderr, tt.want)
			}
		})
	}
}

// A file holding a secret that other users may read is named in a
// warning, as the cluster secret always was: an admin token others can
// read lets any local user drain the node, a private key lets them pose
// as it. Files only the owner reads get no warning.
func TestSecretFilesReadableByOthersWarn(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	dir := t.TempDir()
	if code, _, stderr := runArgs(t, "certs", "--dir", dir, "--service", "chat.test", "--node", "n1"); code != exitOK {
		t.Fatalf("certs: %s", stderr)
	}
	admin := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(admin, []byte("an-admin-secret-of-enough-bytes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"serve", "--check", "--service", "chat.test", "--admin-token", admin, "--tls-cert", filepath.Join(dir, "n1.pem"), "--tls-key", filepath.Join(dir, "n1.key")}
	if code, _, stderr := runArgs(t, args...); code != exitOK || strings.Contains(stderr, "readable by other users") {
		t.Errorf("files of mode 0600: exit %d, stderr:\n%s", code, stderr)
	}
	for _, f := range []string{admin, filepath.Join(dir, "n1.key")} {
		if err := os.Chmod(f, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, _, stderr := runArgs(t, args...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, setting := range []string{"admin-token", "tls-key"} {
		if !slices.ContainsFunc(strings.Split(stderr, "\n"), func(line string) bool {
			return strings.Contains(line, "readable by other users") && strings.Contains(line, " setting="+setting+" ")
		}) {
			t.Errorf("no warning for %s of mode 0644:\n%s", setting, stderr)
		}
	}
}

// Bad files are failures (exit 1) whose errors name the file, the line,
// the key and what is wrong.
func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name, file string
		want       []string
	}{
		{"unknown key", "capacity = 5\nmax_rooms = 3\n", []string{`sb.toml:2: unknown key "max_rooms" (did you mean "max-rooms"?)`}},
		{"not settable from the file", "check = true\n", []string{`sb.toml:1: unknown key "check"`}},
		{"out of range", "\nfeed-heartbeat = \"100ms\"\n", []string{`sb.toml:2: feed-heartbeat = "100ms": 100ms is below 500ms`}},
		{"duration without unit", "store-timeout = 15\n", []string{`sb.toml:1: store-timeout = "15": "15" is not a duration`}},
		{"wrong type", "capacity = \"many\"\n", []string{`sb.toml:1: capacity = "many": "many" is not a whole number`}},
		{"several at once", "replicas = 9\nroom-streams = 300\n", []string{"sb.toml:1: replicas", "9 is outside 0..5", "sb.toml:2: room-streams", "300 is outside 1..256"}},
		{"syntax", "capacity = = 5\n", []string{"sb.toml:1:"}},
		{"the node's own checks", "group = \"/eu\"\n", []string{"serve: invalid settings", `group "/eu" is not REGION or REGION/ZONE`}},
		{"cross-field", "max-chunk = 4096\nbyte-burst = 100\n", []string{"byte burst must hold a whole chunk"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("HOME", t.TempDir())
			path := writeFile(t, "sb.toml", tt.file)
			code, _, stderr := runArgs(t, "serve", "--config", path, "--check")
			if code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}

// --check prints each setting that is not at its default with its source.
func TestServeCheckSources(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("SWITCHBOARD_SERVE_MAX_ROOMS", "4")
	path := writeFile(t, "sb.toml", "service = \"chat.example\"\nid = \"n1\"\n")
	code, stdout, stderr := runArgs(t, "serve", "--config", path, "--capacity", "50", "--check")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	dataDir, err := defaultDataDir(os.Geteuid(), os.Getenv, node.Config{Service: "chat.example", ID: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		"node n1 of chat.example would keep its rooms in " + dataDir,
		`capacity           "50"`, "from --capacity",
		"from SWITCHBOARD_SERVE_MAX_ROOMS", "from " + path + ":1: service",
	} {
		if !strings.Contains(stdout, w) {
			t.Errorf("--check lacks %q:\n%s", w, stdout)
		}
	}
}

func TestDefaultDataDir(t *testing.T) {
	tests := []struct {
		name    string
		euid    int
		env     map[string]string
		id      string
		want    string
		wantErr bool
	}{
		{name: "root", euid: 0, id: "n1", want: "/var/lib/switchboard/chat.example/n1"},
		{name: "XDG_STATE_HOME", euid: 1000, env: map[string]string{"XDG_STATE_HOME": "/s", "HOME": "/h"}, id: "n1", want: "/s/switchboard/chat.example/n1"},
		{name: "HOME", euid: 1000, env: map[string]string{"HOME": "/h"}, id: "n1", want: "/h/.local/state/switchboard/chat.example/n1"},
		{name: "relative XDG_STATE_HOME is ignored", euid: 1000, env: map[string]string{"XDG_STATE_HOME": "s", "HOME": "/h"}, id: "n1", want: "/h/.local/state/switchboard/chat.example/n1"},
		{name: "no ID: the listen address", euid: 0, want: "/var/lib/switchboard/chat.example/127.0.0.1_7070"},
		{name: "no ID with slashes", euid: 0, id: "../x", want: "/var/lib/switchboard/chat.example/.._x"},
		{name: "nowhere", euid: 1000, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s serveSettings
			serveCmdline(&s, nil, nil)
			s.cfg.Service, s.cfg.ID = "chat.example", tt.id
			got, err := defaultDataDir(tt.euid, func(k string) string { return tt.env[k] }, s.cfg)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("defaultDataDir = %q, %v; want %q (error %v)", got, err, tt.want, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "set --data") {
				t.Errorf("error %q does not say what to do", err)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	info := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}}
	dev := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"},
	}}
	tests := []struct {
		name            string
		info            *debug.BuildInfo
		ok              bool
		override        string
		wantLine, short string
	}{
		{"release", info, true, "", "switchboard v1.4.0 (go1.26.8)", "v1.4.0"},
		{"work tree", dev, true, "", "switchboard (devel) (revision 0123456789ab, modified, go1.26.8)", "devel-0123456789ab-dirty"},
		{"ldflags win", dev, true, "v2.0.0", "switchboard v2.0.0 (revision 0123456789ab, modified, go1.26.8)", "v2.0.0"},
		{"no build info", nil, false, "", "switchboard (devel)", "devel"},
	}
	for _, tt := range tests {
		b := fromBuildInfo(tt.info, tt.ok, tt.override)
		if b.String() != tt.wantLine || b.Short() != tt.short {
			t.Errorf("%s: %q, %q; want %q, %q", tt.name, b.String(), b.Short(), tt.wantLine, tt.short)
		}
	}
}

func TestClientTarget(t *testing.T) {
	tests := []struct {
		service, resolver, want string
	}{
		{"127.0.0.1:7070", "", "127.0.0.1:7070"},
		{"a:1,b:2", "", "a:1,b:2"},
		{"chat.local", "", "dns:chat.local"},
		{"chat.local", "127.0.0.1:5353", "dns://127.0.0.1:5353/chat.local"},
		{"dns://10.0.0.1:53/x", "127.0.0.1:5353", "dns://10.0.0.1:53/x"},
	}
	for _, tt := range tests {
		f := clientFlags{service: tt.service, resolver: tt.resolver}
		if got := f.target(); got != tt.want {
			t.Errorf("target(%q, %q) = %q, want %q", tt.service, tt.resolver, got, tt.want)
		}
	}
}

// A NAME:PORT is looked up through --resolver, not the system resolver
// (which knows nothing of chat.test).
func TestResolverAppliesToHostNames(t *testing.T) {
	nodes := []directory.Node{{ID: "n1", Addr: "127.0.0.9:7070", Status: directory.Up, Capacity: 100}}
	cfg := dnsserver.DefaultConfig("chat.test", func() []directory.Node { return nodes })
	cfg.Addr = "127.0.0.1:0"
	srv, err := dnsserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(ctx) })

	f := clientFlags{service: "chat.test:7070,127.0.0.1:1", resolver: srv.Addr()}
	got, err := f.resolvedTarget(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := "127.0.0.9:7070,127.0.0.1:1"; got != want {
		t.Errorf("resolvedTarget = %q, want %q", got, want)
	}
	f.service = "nowhere.test:7070"
	if _, err := f.resolvedTarget(ctx); err == nil || !strings.Contains(err.Error(), "looking up nowhere.test through "+srv.Addr()) {
		t.Errorf("unknown name: %v", err)
	}
	// Without a resolver the target is left to the client, as before.
	f = clientFlags{service: "chat.test:7070"}
	if got, _ := f.resolvedTarget(ctx); got != "chat.test:7070" {
		t.Errorf("without --resolver: %q", got)
	}
}

// Help lists each flag once with its environment twin.
func TestHelpListsEnvironmentTwins(t *testing.T) {
	var out bytes.Buffer
	c := newCmdline("serve", "[flags]", "", &out, &out)
	c.fs.Int("max-rooms", 16, "rooms")
	c.fs.Duration("store-timeout", 0, "timeout")
	if _, err := c.parse([]string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	want := "usage: switchboard serve [flags]\n\nflags (each also set by the environment, SWITCHBOARD_SERVE_<FLAG>):\n" +
		"  --max-rooms int\n        rooms (default 16; env SWITCHBOARD_SERVE_MAX_ROOMS)\n" +
		"  --store-timeout duration\n        timeout (env SWITCHBOARD_SERVE_STORE_TIMEOUT)\n"
	if diff := cmp.Diff(out.String(), want); diff != "" {
		t.Errorf("help (-got +want):\n%s", diff)
	}
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// docs/operations.md names every flag of every command.
func TestOperationsDocListsEveryFlag(t *testing.T) {
	data, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	for _, cmd := range [][]string{{"serve"}, {"dir"}, {"connect"}, {"chat"}, {"demo"}, {"bench", "connect"}, {"bench", "storm"}, {"sim"}} {
		_, help, _ := runArgs(t, append(cmd, "-h")...)
		for _, line := range strings.Split(help, "\n") {
			if !strings.HasPrefix(line, "  --") {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimPrefix(line, "  "), " ")
			if !strings.Contains(doc, "`"+name+"`") {
				t.Errorf("docs/operations.md does not name %s's %s", strings.Join(cmd, " "), name)
			}
		}
	}
	if !strings.Contains(doc, "SWITCHBOARD_SERVE_MAX_ROOMS") {
		t.Error("docs/operations.md lacks serve's environment twins")
	}
}

// docs/operations.md gives every flag of every command in that command's
// section, with the default its -h prints (TestOperationsDocListsEveryFlag
// checks only that a flag is named somewhere): a default changed in the
// code and not in the docs, or said wrongly there, fails here. Defaults
// that depend on the machine (the descriptor limit, the cores) or the
// bench scenario are described in words and not compared.
func TestOperationsDocGivesEveryDefault(t *testing.T) {
	data, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]string{} // "### serve..." heading's first words -> its text
	for _, part := range strings.Split(string(data), "\n### ")[1:] {
		heading, _, _ := strings.Cut(part, "\n")
		sections[heading] = part
	}
	section := func(prefix string) string {
		for heading, text := range sections {
			if strings.HasPrefix(heading, prefix) {
				return text
			}
		}
		t.Fatalf("docs/operations.md has no section %q", prefix)
		return ""
	}
	// Described in words: the machine's (descriptor limit, cores) or the
	// scenario's.
	inWords := map[string]bool{"serve --max-conns": true, "sim --parallel": true, "bench storm --policies": true}
	for _, tt := range []struct {
		cmd     []string
		section string
	}{
		{[]string{"serve"}, "serve:"},
		{[]string{"dir"}, "dir:"},
		{[]string{"drain"}, "drain:"},
		{[]string{"probe"}, "probe:"},
		{[]string{"connect"}, "connect, chat, bench connect:"},
		{[]string{"chat"}, "connect, chat, bench connect:"},
		{[]string{"bench", "connect"}, "connect, chat, bench connect:"},
		{[]string{"demo"}, "demo:"},
		{[]string{"bench", "storm"}, "bench SCENARIO:"},
		{[]string{"bench", "rtp"}, "bench SCENARIO:"},
		{[]string{"sim"}, "sim:"},
		{[]string{"certs"}, "certs, keygen, token:"},
		{[]string{"keygen"}, "certs, keygen, token:"},
		{[]string{"token"}, "certs, keygen, token:"},
	} {
		name := strings.Join(tt.cmd, " ")
		doc := section(tt.section)
		_, help, _ := runArgs(t, append(tt.cmd, "-h")...)
		lines := strings.Split(help, "\n")
		for i, line := range lines {
			if !strings.HasPrefix(line, "  --") || i+1 == len(lines) {
				continue
			}
			flagName, _, _ := strings.Cut(strings.TrimPrefix(line, "  "), " ")
			at := strings.Index(doc, "`"+flagName+"`")
			if at < 0 {
				t.Errorf("docs/operations.md, section %q: no %s for %s", tt.section, flagName, name)
				continue
			}
			m := helpDefault.FindStringSubmatch(lines[i+1])
			if m == nil || inWords[name+" "+flagName] {
				continue
			}
			def := m[1]
			if !docGivesDefault(doc, flagName, def) {
				t.Errorf("docs/operations.md, section %q: %s's %s does not say its default, %s", tt.section, name, flagName, def)
			}
		}
	}
}

// helpDefault finds the default in a flag's line of -h.
var helpDefault = regexp.MustCompile(`\(default ([^;]*); env SWITCHBOARD_[A-Z_]+\)$`)

// docGivesDefault reports whether, at some mention of flag in doc, the
// words that follow (its table cell, or its parenthesis in prose) give
// def: the same text, or the same duration however written (5m, 5m0s).
func docGivesDefault(doc, flag, def string) bool {
	want, isDuration := time.ParseDuration(def)
	for rest := doc; ; {
		at := strings.Index(rest, "`"+flag+"`")
		if at < 0 {
			return false
		}
		rest = rest[at+len(flag)+2:]
		window := rest[:min(len(rest), 48)]
		if strings.HasPrefix(strings.TrimSpace(window), "|") {
			// A table row: the cell after the flag's.
			window, _, _ = strings.Cut(rest[strings.Index(rest, "|")+1:], "|")
		}
		if strings.Contains(window, def) {
			return true
		}
		for _, word := range strings.FieldsFunc(window, func(r rune) bool { return strings.ContainsRune(" \n,;()|`", r) }) {
			if word == def {
				return true
			}
			if d, err := time.ParseDuration(word); isDuration == nil && err == nil && d == want {
				return true
			}
		}
	}
}
