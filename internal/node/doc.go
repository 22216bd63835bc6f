// Package node is one Switchboard server: it listens for clients, admits
// sessions up to its capacity, keeps the directory of every node of its
// service current with its peers over the bus, and serves that directory
// to clients, to HTTP and to DNS.
//
// New checks a Config; Start opens the bus, starts the goroutines and, when
// Config.Listen is set, listens for clients there; Serve accepts clients
// on any other listener and ServeConn serves one connection (a WebSocket
// adapted to net.Conn, say); Shutdown says goodbye to the peers, tells
// every session why it ends and stops everything, waiting for every
// goroutine the node started; Halt stops it as a crash would look.
//
//	n, err := node.New(cfg)
//	if err := n.Start(ctx); err != nil { ... }
//	defer n.Shutdown(context.Background())
//	go n.Serve(extraListener) // returns ErrClosed after Shutdown
//
// Rooms carry the service itself, real-time text: a session joins rooms
// and sends text chunks as they are typed; the node stores them in
// replicated JetStream streams, acknowledges them once stored, and
// delivers them to every member on any node through one feed per room
// (rooms.go explains storage, replay, snapshots and presence).
//
// Concurrency: one goroutine (run) owns the directory table and publishes
// immutable snapshots through an atomic pointer that every hello reads
// without locks. Each client connection has one goroutine reading it;
// writes to a client go through the session's queue (session.mu), drained
// by the reader itself or, for pushed messages, by a short-lived writer
// goroutine. Each room with local members has one feed goroutine owning
// its state, and a text writer (rooms_writer.go) storing its text in
// batches; a session's reader hands its chunks to that writer and reads
// on, and what both change about the session's text (seqs, held and
// failed chunks) is guarded by session.textMu.
package node
