package node

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A node's incarnation orders its lives: a peer takes a node's entry only
// from its newest incarnation (directory.Table), and a room member joined
// in an older one is stale. It is the start time in nanoseconds, but a
// clock stepped back (NTP, a restored VM, a move to another host) would
// give a restart a lower one, and every peer would ignore the node until
// its old record went down and was removed, a minute or more. So the
// last incarnation is kept in the data directory, and a start takes one
// above it whatever the clock says.

// incarnationFile is the file in the data directory holding the node's
// last incarnation, in decimal.
const incarnationFile = "incarnation"

// incarnationClock is the clock incarnations are drawn from: time.Now,
// or a test's clock stepped back.
var incarnationClock = time.Now

// nextIncarnation returns the incarnation of a node starting with
// dataDir: the clock's nanoseconds, or one above the last incarnation
// kept there when that is higher, and keeps it there. A file it cannot
// read or write (a damaged file, a full disk) costs only the guard: it
// logs and returns the clock's.
func (n *Node) nextIncarnation(dataDir string) uint64 {
	inc := uint64(incarnationClock().UnixNano())
	path := filepath.Join(dataDir, incarnationFile)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		n.log.Warn("reading the last incarnation", "file", path, "err", err)
	default:
		last, perr := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
		if perr != nil {
			n.log.Warn("ignoring a damaged incarnation file", "file", path, "err", perr)
			break
		}
		if last >= inc {
			n.log.Warn("the clock is behind this node's last start: its incarnation continues from the last one", "last", last, "clock", inc)
			if ahead := time.Duration(last - inc); ahead > maxIncarnationAhead {
				// Peers drop entries whose incarnation is that far ahead
				// of their clocks (acceptEntry).
				n.log.Error("the last incarnation is more than a day ahead of the clock: peers will not list this node until their clocks pass it; if a start's clock was wrong, stop the node and remove the incarnation file", "file", path, "ahead", ahead.Round(time.Second))
			}
			inc = last + 1
		}
	}
	if err := writeIncarnation(path, inc); err != nil {
		n.log.Warn("keeping the incarnation", "file", path, "err", err)
	}
	return inc
}

// writeIncarnation replaces the file at path with inc, whole or not at
// all.
func writeIncarnation(path string, inc uint64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), incarnationFile+".*")
	if err != nil {
		return err
	}
	_, werr := tmp.WriteString(strconv.FormatUint(inc, 10) + "\n")
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}
