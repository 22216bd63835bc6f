package localcluster

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Launch starts one more node and returns without waiting for it to be
// up (Add waits until every node lists it, asking each node about each:
// slow past a few dozen nodes).
func (c *Cluster) Launch() (*Node, error) { return c.start() }

// RSS is the resident memory of the node's process, in bytes, read from
// /proc/PID/status (VmRSS): Linux only.
func (n *Node) RSS() (int64, error) {
	if n.cmd == nil || n.cmd.Process == nil {
		return 0, errors.New("localcluster: node " + n.ID + " has no process")
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(n.cmd.Process.Pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("localcluster: reading the memory of node %s: %w", n.ID, err)
	}
	return parseVmRSS(string(data))
}

// parseVmRSS reads the "VmRSS:   1234 kB" line of /proc/PID/status.
func parseVmRSS(status string) (int64, error) {
	for line := range strings.Lines(status) {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("localcluster: malformed VmRSS line %q", strings.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("localcluster: VmRSS %q: %w", f[0], err)
		}
		return kb << 10, nil
	}
	return 0, errors.New("localcluster: no VmRSS in /proc status")
}
