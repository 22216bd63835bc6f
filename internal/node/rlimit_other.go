//go:build !unix

package node

// openFileLimit is 0 where the descriptor limit cannot be read.
func openFileLimit() int { return 0 }
