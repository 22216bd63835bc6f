package main

import (
	"fmt"
	"io"
	"log/slog"
	"slices"

	"github.com/switchboard/switchboard/internal/node"
)

// liveSettings are the serve settings that a SIGHUP applies from the
// config file while the node runs. Every other setting the file changes
// waits for a restart, and the reload says which.
var liveSettings = []string{"capacity", "max-conns", "max-conns-per-ip", "log-level", "drain-grace"}

// changedSettings lists, in flag order, the settings a config file may set
// whose values differ between before and after, two command lines parsed
// from the same arguments and environment.
func changedSettings(before, after *cmdline) []string {
	var changed []string
	for _, name := range fileKeys(before) {
		a, b := before.fs.Lookup(name), after.fs.Lookup(name)
		if a != nil && b != nil && a.Value.String() != b.Value.String() {
			changed = append(changed, name)
		}
	}
	return changed
}

// newNode checks s as serve does before it starts a node (the log flags,
// the fronts' settings, the node's configuration) and prepares the node,
// logging to w.
func (s *serveSettings) newNode(w io.Writer) (*node.Node, *slog.Logger, error) {
	logger, err := s.log.logger("serve", w)
	if err != nil {
		return nil, nil, err
	}
	s.cfg.Logger = logger
	if err := s.sip.validate(&s.cfg); err != nil {
		return nil, nil, err
	}
	if err := s.rtc.validate(&s.cfg); err != nil {
		return nil, nil, err
	}
	n, err := node.New(s.cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("serve: invalid settings: %w", err)
	}
	return n, logger, nil
}

// reload is serve's SIGHUP: it reloads the node's credentials
// (node.Reload), then, with --config, reads the file again with the same
// command line and environment. A file that does not load, or whose
// settings would not start a node, changes nothing. Otherwise the live
// settings that differ from those in force (current) are applied, and
// those that differ from what the node started with (started) and are not
// live are logged as waiting for a restart. It returns the command line
// whose live settings are now in force.
func (s *serveSettings) reload(n *node.Node, args []string, started, current *cmdline, logger *slog.Logger) *cmdline {
	logger.Info("SIGHUP: reloading the certificates, token keys and admin token", "config", s.configPath)
	// The node logs what it reloaded and what it refused; the metrics
	// say whether everything was taken.
	ok := n.Reload() == nil
	defer func() { n.NoteReload(ok) }()
	if s.configPath == "" {
		return current
	}
	var next serveSettings
	c, err := loadServe(&next, args, io.Discard, io.Discard)
	if err == nil {
		_, _, err = next.newNode(io.Discard) // as at start; the node is not started
	}
	if err != nil {
		logger.Error("reloading the config file: keeping the settings in use", "file", s.configPath, "err", err)
		ok = false
		return current
	}
	var applied, restart []string
	for _, name := range changedSettings(current, c) {
		if slices.Contains(liveSettings, name) {
			applied = append(applied, name)
		}
	}
	for _, name := range changedSettings(started, c) {
		if !slices.Contains(liveSettings, name) {
			restart = append(restart, name)
		}
	}
	if err := n.SetLimits(node.Limits{Capacity: next.cfg.Capacity, MaxConns: next.cfg.MaxConns, MaxConnsPerIP: next.cfg.MaxConnsPerIP}); err != nil {
		logger.Error("reloading the config file: keeping the settings in use", "file", s.configPath, "err", err)
		ok = false
		return current
	}
	_ = s.log.setLevel(next.log.level) // valid: newNode made a logger of it
	s.log.level = next.log.level
	s.drainGrace = next.drainGrace
	logger.Info("reloaded the config file", "file", s.configPath, "applied", applied)
	if len(restart) > 0 {
		logger.Warn("the config file changes settings that take effect at the next restart", "file", s.configPath, "settings", restart)
	}
	return c
}
