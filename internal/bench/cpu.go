package bench

import "time"

// cpu is the CPU time the local cluster's node processes have used so
// far, or -1 when it cannot be read (a running service, or not Linux).
func (c *cluster) cpu() time.Duration {
	if c.local == nil {
		return -1
	}
	d, err := c.local.CPU()
	if err != nil {
		return -1
	}
	return d
}
