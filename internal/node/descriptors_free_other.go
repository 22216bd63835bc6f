//go:build !linux

package node

// descriptorsFree cannot count the open descriptors here: true.
func descriptorsFree(int) bool { return true }
