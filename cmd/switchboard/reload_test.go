package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/nodetest"
)

func TestChangedSettings(t *testing.T) {
	parse := func(args ...string) *cmdline {
		var s serveSettings
		c, err := loadServe(&s, args, io.Discard, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	base := parse("--capacity", "10", "--data", "/x")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--capacity", "10", "--data", "/x"}, nil},
		{[]string{"--capacity", "20", "--data", "/x", "--max-rooms", "3"}, []string{"capacity", "max-rooms"}},
		{[]string{"--data", "/x"}, []string{"capacity"}}, // back to the default
	} {
		if got := changedSettings(base, parse(tc.args...)); !slices.Equal(got, tc.want) {
			t.Errorf("%v: changed %v, want %v", tc.args, got, tc.want)
		}
	}
}

// A SIGHUP that reads a 0 the node would take for its default refuses
// the file and keeps the limits in force, saying why: a capacity lowered
// to 0 before a drain used to open the node to 10,000 sessions.
func TestReloadRefusesZero(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	file := writeFile(t, "sb.toml", "capacity = 50\nmax-conns-per-ip = 20\n")
	args := []string{"--config", file, "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--http", ""}
	var s serveSettings
	c, err := loadServe(&s, args, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	n, _, err := s.newNode(io.Discard) // not started: reload sets its limits all the same
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"capacity = 0\nmax-conns-per-ip = 20\n", "capacity = 50\nmax-conns-per-ip = 0\n"} {
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		if got := s.reload(n, args, c, c, slog.New(slog.NewTextHandler(&logs, nil))); got != c {
			t.Errorf("%q: reload put new settings in force", text)
		}
		if l := n.Limits(); l.Capacity != 50 || l.MaxConnsPerIP != 20 {
			t.Errorf("%q: limits %+v; want capacity 50 and max-conns-per-ip 20 kept", text, l)
		}
		if !strings.Contains(logs.String(), "keeping the settings in use") || !strings.Contains(logs.String(), "0 is below 1, the least") {
			t.Errorf("%q: the log does not say why the file was refused:\n%s", text, logs.String())
		}
	}
}

// A SIGHUP applies the config file's live settings to the running node,
// names the ones that wait for a restart, and keeps everything when the
// file no longer loads.
func TestSIGHUPAppliesTheConfigFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "sb.toml")
	write := func(text string) {
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const fixed = "service = \"hup.test\"\nlisten = \"127.0.0.1:0\"\nhttp = \"127.0.0.1:0\"\n"
	write(fixed + "capacity = 50\nmax-rooms = 16\n")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "serve", "--config", file, "--data", filepath.Join(dir, "data"))
	var logs nodetest.LockedBuffer
	cmd.Stderr = &logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	banner := regexp.MustCompile(`\(http ([0-9.:]+),`)
	sc := bufio.NewScanner(stdout)
	var httpAddr string
	for httpAddr == "" && sc.Scan() {
		if m := banner.FindStringSubmatch(sc.Text()); m != nil {
			httpAddr = m[1]
		}
	}
	if httpAddr == "" {
		t.Fatalf("serve printed no HTTP address; its log:\n%s", logs.String())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	capacity := func() (string, error) {
		resp, err := http.Get("http://" + httpAddr + "/metrics")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return "", err
		}
		m := regexp.MustCompile(`(?m)^switchboard_capacity (\S+)$`).FindSubmatch(body)
		if m == nil {
			return "", errors.New("no switchboard_capacity in /metrics")
		}
		return string(m[1]), nil
	}
	awaitCapacity := func(want string) {
		t.Helper()
		nodetest.Eventually(t, time.Minute, func() error {
			got, err := capacity()
			if err == nil && got != want {
				err = fmt.Errorf("capacity %s, want %s", got, want)
			}
			return err
		})
	}
	awaitCapacity("50")

	write(fixed + "capacity = 7\nmax-rooms = 8\nlog-level = \"debug\"\n")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	awaitCapacity("7")
	awaitReload := func(want string) {
		t.Helper()
		nodetest.Eventually(t, time.Minute, func() error {
			resp, err := http.Get("http://" + httpAddr + "/metrics")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				return err
			}
			if !regexp.MustCompile(`(?m)^switchboard_reload_successful ` + want + `$`).Match(body) {
				return fmt.Errorf("switchboard_reload_successful is not %s", want)
			}
			return nil
		})
	}
	awaitReload("1")
	nodetest.Eventually(t, time.Minute, func() error {
		for _, want := range []string{`applied="[capacity log-level]"`, `settings=[max-rooms]`} {
			if !strings.Contains(logs.String(), want) {
				return fmt.Errorf("no %s in the log", want)
			}
		}
		return nil
	})

	// A file that does not load changes nothing, and the node runs on.
	write(fixed + "capacity = 3\nmax-romos = 8\n")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, time.Minute, func() error {
		if !strings.Contains(logs.String(), "reloading the config file: keeping the settings in use") {
			return errors.New("no line says the file was refused")
		}
		return nil
	})
	if got, err := capacity(); err != nil || got != "7" {
		t.Errorf("after a file that does not load: capacity %s (%v), want 7 still", got, err)
	}
	// and the metrics say the reload failed, for an alert to see.
	awaitReload("0")
}
