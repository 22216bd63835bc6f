//go:build !unix

package bench

import "time"

// processCPU is the CPU time this process has used so far: not known
// here, -1.
func processCPU() time.Duration { return -1 }
