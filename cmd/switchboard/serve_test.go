package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/localcluster"
	"github.com/switchboard/switchboard/internal/nodetest"
)

// A cluster port already in use fails serve at once with the bind error,
// instead of after the embedded server's start timeout.
func TestServeClusterPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	secret := filepath.Join(t.TempDir(), "cluster.secret")
	if err := os.WriteFile(secret, []byte("a-secret-of-enough-bytes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--listen", "127.0.0.1:0", "--http", "", "--cluster", ln.Addr().String(), "--cluster-secret-file", secret, "--data", t.TempDir()}
	err = runServe(context.Background(), args, &strings.Builder{}, &strings.Builder{})
	if err == nil || !strings.Contains(err.Error(), "bus: cluster listener") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("serve with a busy cluster port: %v", err)
	}
	if exitCode(err) != exitFailure {
		t.Errorf("exit code %d, want %d", exitCode(err), exitFailure)
	}
}

// A stop asked for while the node starts (SIGTERM or SIGINT: serve's
// context ends) is no failure: serve returns nil, exit 0, and says so.
// It returned "context canceled", exit 1, which a supervisor restarting
// on failure (the systemd unit's Restart=on-failure) took for a crash.
func TestServeStoppedWhileStarting(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stderr strings.Builder
	args := []string{"--listen", "127.0.0.1:0", "--http", "", "--data", t.TempDir()}
	if err := runServe(ctx, args, &strings.Builder{}, &stderr); err != nil {
		t.Errorf("serve stopped as it started: %v (exit %d), want nil", err, exitCode(err))
	}
}

// SIGHUP makes serve read its certificate again: a renewed one is served
// from the next handshake on and the process keeps running. Before, the
// certificate was read at start only, and SIGHUP ended the process.
func TestSIGHUPReloadsTheCertificate(t *testing.T) {
	var logs nodetest.LockedBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := localcluster.Start(ctx, localcluster.Config{Binary: binary, Nodes: 1, Standalone: true, Service: "hup.test", TLS: true, Output: &logs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	served := func() (*big.Int, error) {
		conn, err := tls.Dial("tcp", c.Nodes[0].Addr, &tls.Config{RootCAs: c.CAPool(), ServerName: c.Service()})
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber, nil
	}
	first, err := served()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RenewCertificate(0); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, time.Minute, func() error {
		if !c.Nodes[0].Alive() {
			t.Fatalf("the node exited at SIGHUP; its log:\n%s", logs.String())
		}
		serial, err := served()
		switch {
		case err != nil:
			return err
		case serial.Cmp(first) == 0:
			return errors.New("still the first certificate")
		}
		return nil
	})
	// The node logs the reload after it swaps the certificate, and the
	// line crosses a pipe from another process: await it rather than
	// expect it the moment the new certificate is served.
	nodetest.Eventually(t, time.Minute, func() error {
		if !strings.Contains(logs.String(), "reloaded the TLS certificate") {
			return fmt.Errorf("no line says the certificate was reloaded; the log:\n%s", logs.String())
		}
		return nil
	})
}

// A 0 that the node would take for its default is refused wherever it is
// written, with the setting's name and the least it takes: capacity = 0
// used to open the node to the default's 10,000 sessions, and --check
// showed "0".
func TestServeRefusesZero(t *testing.T) {
	tests := []struct {
		setting, zero, why string
	}{
		{"capacity", "0", "0 is below 1, the least"},
		{"max-conns", "0", "0 is below 1, the least"},
		{"max-conns-per-ip", "0", "0 is below 1, the least"},
		{"max-rooms", "0", "0 is below 1, the least"},
		{"max-participants", "0", "0 is below 1, the least"},
		{"chunk-burst", "0", "0 is below 1, the least"},
		{"chunk-rate", "0", "0 is not allowed: write a number above 0"},
		{"rebalance-rate", "0", "0 is not allowed: write a number above 0"},
		{"dns-rate-limit", "0", "0 is not allowed: write -1, or 1 or more"},
		{"dns-ttl", "0s", "0s is not allowed: write a duration above 0s"},
		{"coalesce", "0s", "0s is not allowed: write a duration above 0s"},
		{"idle-timeout", "0s", "0s is not allowed: write a duration above 0s"},
		{"heartbeat", "0s", "0s is below 1ms, the least"},
		{"sip-conn-idle", "0s", "0s is below 1s, the least"},
		{"rtc-max-peers", "0", "0 is below 1, the least"},
	}
	for _, tt := range tests {
		t.Run(tt.setting, func(t *testing.T) {
			t.Setenv("HOME", t.TempDir())
			twin := envName("serve", tt.setting)
			value := tt.zero
			if strings.HasSuffix(value, "s") {
				value = `"` + value + `"`
			}
			file := writeFile(t, "sb.toml", tt.setting+" = "+value+"\n")
			for _, src := range []struct {
				name, env string
				args      []string
				code      int
				where     string
			}{
				{"flag", "", []string{"--" + tt.setting, tt.zero}, exitUsage, "--" + tt.setting},
				{"environment", tt.zero, nil, exitUsage, twin},
				{"file", "", []string{"--config", file}, exitFailure, file + ":1: " + tt.setting},
			} {
				if src.env != "" {
					t.Setenv(twin, src.env)
				}
				var s serveSettings
				_, err := loadServe(&s, src.args, io.Discard, io.Discard)
				if err == nil || exitCode(err) != src.code || !strings.Contains(err.Error(), src.where) ||
					!strings.Contains(err.Error(), tt.why) || !strings.Contains(err.Error(), "leave the setting out") {
					t.Errorf("%s: %v (exit %d); want exit %d naming %s and saying %q", src.name, err, exitCode(err), src.code, src.where, tt.why)
				}
				os.Unsetenv(twin)
			}
		})
	}
}

// Only the settings whose 0 means something of its own, which their help
// says, take 0; every other number and duration of serve refuses it.
func TestServeZeroOnlyWhereItMeansSomething(t *testing.T) {
	var s serveSettings
	c := serveCmdline(&s, io.Discard, io.Discard)
	numbers := 0
	c.fs.VisitAll(func(f *flag.Flag) {
		zero := "0"
		switch f.Value.(type) {
		case *rangeInt, *nonNegFloat:
		case *rangeDuration, retentionValue:
			zero = "0s"
		default:
			return
		}
		numbers++
		err := f.Value.Set(zero)
		switch means := slices.Contains(zeroMeans, f.Name); {
		case means && err != nil:
			t.Errorf("--%s %s: %v; want it taken", f.Name, zero, err)
		case means && !strings.Contains(f.Usage, "0: "):
			t.Errorf("--%s takes 0, but its help does not say what 0 means: %q", f.Name, f.Usage)
		case !means && err == nil:
			t.Errorf("--%s %s taken; want it refused", f.Name, zero)
		}
	})
	if numbers < 40 {
		t.Errorf("%d numbers and durations seen; want serve's all", numbers)
	}
}

// A whole float in the file is its whole number, and any other float's
// error quotes it as the file wrote it: capacity = 2e6 was refused as
// "2e+06" is not a whole number.
func TestServeFileFloatForAWholeNumber(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	var s serveSettings
	if _, err := loadServe(&s, []string{"--config", writeFile(t, "sb.toml", "capacity = 2e6\n")}, io.Discard, io.Discard); err != nil || s.cfg.Capacity != 2000000 {
		t.Errorf("capacity = 2e6: capacity %d, %v; want 2000000", s.cfg.Capacity, err)
	}
	file := writeFile(t, "sb.toml", "max-rooms = 2.5\n")
	if _, err := loadServe(&s, []string{"--config", file}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), file+`:1: max-rooms = "2.5": "2.5" is not a whole number`) {
		t.Errorf("max-rooms = 2.5: %v; want it refused as not a whole number", err)
	}
}
