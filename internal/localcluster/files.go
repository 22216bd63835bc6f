package localcluster

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// OpenFiles is how many descriptors the node's process holds open, and
// its soft limit on them (RLIMIT_NOFILE), read from /proc/PID/fd and
// /proc/PID/limits: Linux only. It fails once the process has exited.
func (n *Node) OpenFiles() (open, limit int, err error) {
	if n.cmd == nil || n.cmd.Process == nil {
		return 0, 0, errors.New("localcluster: node " + n.ID + " has no process")
	}
	dir := "/proc/" + strconv.Itoa(n.cmd.Process.Pid)
	fds, err := os.ReadDir(dir + "/fd")
	if err != nil {
		return 0, 0, fmt.Errorf("localcluster: counting the descriptors of node %s: %w", n.ID, err)
	}
	data, err := os.ReadFile(dir + "/limits")
	if err != nil {
		return 0, 0, fmt.Errorf("localcluster: reading the limits of node %s: %w", n.ID, err)
	}
	limit, err = parseOpenFilesLimit(string(data))
	if err != nil {
		return 0, 0, fmt.Errorf("localcluster: node %s: %w", n.ID, err)
	}
	return len(fds), limit, nil
}

// parseOpenFilesLimit reads the soft limit of the "Max open files" row of
// a /proc/PID/limits table ("Max open files  2048  2048  files").
func parseOpenFilesLimit(limits string) (int, error) {
	for line := range strings.Lines(limits) {
		rest, ok := strings.CutPrefix(line, "Max open files")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			break
		}
		v, err := strconv.Atoi(f[0])
		if err != nil {
			return 0, fmt.Errorf("the open files limit %q: %w", f[0], err)
		}
		return v, nil
	}
	return 0, fmt.Errorf("no open files limit in %q", limits)
}
