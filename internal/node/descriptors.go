package node

// logDescriptorHeadroom warns, once at start, when MaxConns leaves fewer
// descriptors than DefaultMaxConns holds back: past that the connections
// it admits may take the descriptors JetStream needs for the rooms it
// stores, and nats-server does not stop its JetStream when it has none
// (as it does on a full disk), so text could fail to store while the
// node says up.
func (n *Node) logDescriptorHeadroom() {
	limit := openFileLimit()
	if limit <= 0 || n.cfg.MaxConns <= DefaultMaxConns() {
		return
	}
	n.log.Warn("max-conns leaves storage and peers too few descriptors: a flood of connections could make text fail to store while the node says up",
		"max_conns", n.cfg.MaxConns, "descriptor_limit", limit, "held_back", limit-n.cfg.MaxConns, "advised_max_conns", DefaultMaxConns())
}
