package localcluster

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat's CPU
// times: 100 on every Linux architecture Go supports.
const clockTicks = 100

// CPU is the CPU time (user and system) the node's process has used so
// far, read from /proc/PID/stat: Linux only. It fails once the process
// has exited.
func (n *Node) CPU() (time.Duration, error) {
	if n.cmd == nil || n.cmd.Process == nil {
		return 0, errors.New("localcluster: node " + n.ID + " has no process")
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(n.cmd.Process.Pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("localcluster: reading the CPU time of node %s: %w", n.ID, err)
	}
	return parseStatCPU(string(data))
}

// parseStatCPU reads utime and stime, the 14th and 15th fields of a
// /proc/PID/stat line. The second field, the command in parentheses, may
// hold spaces, so the fields are counted after its closing parenthesis.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("localcluster: malformed /proc stat %q", stat)
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3, the state
	if len(f) < 13 {
		return 0, fmt.Errorf("localcluster: short /proc stat %q", stat)
	}
	var ticks uint64
	for _, s := range f[11:13] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("localcluster: /proc stat CPU field %q: %w", s, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// CPU sums the CPU time of the nodes still running.
func (c *Cluster) CPU() (time.Duration, error) {
	var sum time.Duration
	for _, n := range c.Nodes {
		select {
		case <-n.exited:
			continue
		default:
		}
		d, err := n.CPU()
		if err != nil {
			return 0, err
		}
		sum += d
	}
	return sum, nil
}
