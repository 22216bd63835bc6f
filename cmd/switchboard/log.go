package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
)

// logFlags are the log flags of the commands that run nodes.
type logFlags struct {
	level  string
	format string
	// live is the level of the logger made last, which setLevel changes
	// while it runs (nil before).
	live *slog.LevelVar
}

func (l *logFlags) register(c *cmdline, defaultLevel string) {
	c.fs.StringVar(&l.level, "log-level", defaultLevel, "log level: debug, info, warn, error")
	c.fs.StringVar(&l.format, "log-format", "text", "log format: text (key=value) or json (one object a line)")
}

// logger returns the logger the flags ask for, writing to w. Every record
// it writes has each key once: a component that names itself on a logger
// its caller already named replaces the name instead of adding a second.
func (l *logFlags) logger(cmd string, w io.Writer) (*slog.Logger, error) {
	live := new(slog.LevelVar)
	if err := live.UnmarshalText([]byte(l.level)); err != nil {
		return nil, usagef(cmd, "%s: --log-level %q: want debug, info, warn or error", cmd, l.level)
	}
	l.live = live
	opts := &slog.HandlerOptions{Level: l.live}
	var h slog.Handler
	switch l.format {
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, usagef(cmd, "%s: --log-format %q: want text or json", cmd, l.format)
	}
	return slog.New(&uniqueKeys{next: h}), nil
}

// setLevel changes the level of the logger made last to text's (debug,
// info, warn or error).
func (l *logFlags) setLevel(text string) error {
	if l.live == nil {
		return fmt.Errorf("--log-level %q: no logger made yet", text)
	}
	if err := l.live.UnmarshalText([]byte(text)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", text)
	}
	return nil
}

// uniqueKeys is a slog.Handler that keeps one attribute per key at the top
// level: a later attribute (a child logger's, then the record's) replaces
// an earlier one of the same key. slog's own handlers write both, which
// makes "component=dns component=dnsserver" and JSON objects with a key
// twice. Attributes are held here until a group starts, so that they can
// still be replaced.
type uniqueKeys struct {
	next  slog.Handler
	attrs []slog.Attr
}

// Enabled reports whether the wrapped handler takes records of level l.
func (h *uniqueKeys) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

// WithAttrs returns a handler that adds as, replacing attributes of the
// same keys.
func (h *uniqueKeys) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	attrs := slices.Clone(h.attrs)
	for _, a := range as {
		attrs = setAttr(attrs, a)
	}
	return &uniqueKeys{next: h.next, attrs: attrs}
}

// WithGroup hands the attributes gathered so far to the wrapped handler
// and opens the group there.
func (h *uniqueKeys) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &uniqueKeys{next: h.next.WithAttrs(h.attrs).WithGroup(name)}
}

// Handle writes r with the gathered attributes, each key once.
func (h *uniqueKeys) Handle(ctx context.Context, r slog.Record) error {
	attrs := slices.Clone(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		attrs = setAttr(attrs, a)
		return true
	})
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	out.AddAttrs(attrs...)
	if err := h.next.Handle(ctx, out); err != nil {
		return fmt.Errorf("writing a log record: %w", err)
	}
	return nil
}

// setAttr replaces the attribute of a's key in attrs, or appends a.
func setAttr(attrs []slog.Attr, a slog.Attr) []slog.Attr {
	if a.Key == "" && a.Value.Kind() != slog.KindGroup {
		return attrs // slog drops these too
	}
	if i := slices.IndexFunc(attrs, func(b slog.Attr) bool { return b.Key == a.Key && a.Key != "" }); i >= 0 {
		attrs[i] = a
		return attrs
	}
	return append(attrs, a)
}
