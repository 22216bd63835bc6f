package node

// logDescriptorHeadroom warns, at start and when SetLimits changes it, when MaxConns leaves fewer
// descriptors than DefaultMaxConns holds back: past that the connections
// it admits may take the descriptors JetStream needs for the rooms it
// stores, and nats-server does not stop its JetStream when it has none
// (as it does on a full disk), so text could fail to store while the
// node says up.
func (n *Node) logDescriptorHeadroom() {
	limit, maxConns := openFileLimit(), int(n.maxConns.Load())
	if limit <= 0 || maxConns <= DefaultMaxConns() {
		return
	}
	n.log.Warn("max-conns leaves storage and peers too few descriptors: a flood of connections could make text fail to store while the node says up",
		"max_conns", maxConns, "descriptor_limit", limit, "held_back", limit-maxConns, "advised_max_conns", DefaultMaxConns())
}
