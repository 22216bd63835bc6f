package node

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The text writer of a feed: group commit of a room's text on one node.
//
// A session's reader hands its chunks to the writer of the room's feed
// (after publishing them live, see rooms_live.go) and goes on reading; the
// writer answers each request through its done callback, in the order the
// requests came, so a session's acks go out in the order of its chunks
// and its chunks are stored in the order sent. While one record is being
// stored, the chunks that arrive meanwhile wait, and the next record
// carries all of them, up to maxBatchChunks and maxBatchBytes, as one
// batch record (room.OpBatch). A lone chunk is stored as a plain text
// record under its message ID, as before.
//
// On an idle room this adds nothing: a chunk that finds the writer free
// is stored at once. Under load the batches grow with the time a record
// takes to store, so one replicated write and one consumer delivery to
// each node carry several keystrokes, and the work per keystroke falls as
// the load rises instead of piling up.
//
// What an ack promises does not change: a chunk is acknowledged once the
// record holding it is stored on a quorum. A batch is stored whole or not
// at all; when it is not, every session in it gets `unavailable` for its
// chunk and resends it, and the room drops whatever part of a resend was
// stored after all by (sender, seq). The requests queued behind a failed
// store get the same answer at once, rather than wait for stores that
// would most likely fail too. A request whose session had a chunk
// refused since (its check fails) is answered with that error unstored:
// storing it before the refused chunk is resent would make the resend
// look like a duplicate.

// Bounds of one batch record.
const (
	maxBatchChunks = 64
	maxBatchBytes  = 64 << 10
)

// textReq is one session's chunks waiting for the writer, in the order
// sent.
type textReq struct {
	recs  []record
	check func() error    // may it be stored now? nil: yes
	done  func(err error) // the answer, called once on the writer's goroutine; must not block
	hold  chan struct{}   // tests: not a chunk; the writer waits until it closes
}

// submitText hands req to the feed's writer. It blocks while the writer's
// queue is full, until ctx ends; on an error req.done is not called, and
// otherwise it is called once, whatever happens to the feed.
func (f *feed) submitText(ctx context.Context, req *textReq) error {
	f.submitMu.RLock()
	defer f.submitMu.RUnlock()
	if f.submitClosed {
		return errFeedClosed
	}
	select {
	case f.texts <- req:
		return nil
	case <-f.ctx.Done():
		return errFeedClosed
	case <-ctx.Done():
		return fmt.Errorf("node: waiting to store text in room %s: %w", f.room, ctx.Err())
	}
}

// writeTexts is the writer's goroutine: it stores the chunks handed to
// it, batching those that wait, until the feed is released. Chunks still
// queued then are answered errFeedClosed.
func (f *feed) writeTexts() {
	batch := make([]*textReq, 0, maxBatchChunks)
	for {
		var first *textReq
		select {
		case first = <-f.texts:
		case <-f.ctx.Done():
			// No request comes after this: every one queued is answered.
			f.submitMu.Lock()
			f.submitClosed = true
			f.submitMu.Unlock()
			for {
				select {
				case req := <-f.texts:
					if req.done != nil {
						req.done(errFeedClosed)
					}
				default:
					return
				}
			}
		}
		if first.hold != nil {
			f.waitHold(first)
			continue
		}
		if !first.admit() {
			continue
		}
		batch = append(batch[:0], first)
		chunks, size := first.size()
	gather:
		for chunks < maxBatchChunks && size < maxBatchBytes {
			select {
			case req := <-f.texts:
				if req.hold != nil { // tests: store what came before it, then wait
					f.storeAnswer(batch, chunks)
					batch, chunks, size = batch[:0], 0, 0
					f.waitHold(req)
					continue
				}
				if !req.admit() {
					continue
				}
				batch = append(batch, req)
				c, b := req.size()
				chunks, size = chunks+c, size+b
			default:
				break gather
			}
		}
		f.storeAnswer(batch, chunks)
	}
}

// waitHold waits until a test's hold request is released, or the feed
// ends.
func (f *feed) waitHold(req *textReq) {
	select {
	case <-req.hold:
	case <-f.ctx.Done():
	}
}

// admit runs req's check and answers it if the check fails.
func (req *textReq) admit() bool {
	if req.check == nil {
		return true
	}
	if err := req.check(); err != nil {
		req.done(err)
		return false
	}
	return true
}

// storeAnswer stores batch, when it has chunks, and answers its requests.
func (f *feed) storeAnswer(batch []*textReq, chunks int) {
	if len(batch) == 0 {
		return
	}
	err := f.storeBatch(batch, chunks)
	// Counted before the answers go out: a resend they cause comes after.
	queued := len(f.texts)
	for _, req := range batch {
		req.done(err)
	}
	f.e.metrics.batchChunks.Observe(float64(chunks)) // tried, stored or not
	if err != nil {
		f.failQueued(err, queued)
	}
}

// failQueued answers err, unstored, to the first n requests queued: those
// that waited behind a store that failed. The next store would most
// likely fail too (the stream has no leader, say), and a request behind
// several batches would wait for each: a chunk waits for at most the
// store under way and its own.
func (f *feed) failQueued(err error, n int) {
	for range n {
		select {
		case req := <-f.texts:
			if req.hold != nil {
				f.waitHold(req)
				continue
			}
			req.done(err)
		default:
			return
		}
	}
}

// size is the request's chunks and text bytes.
func (req *textReq) size() (chunks, bytes int) {
	for _, rec := range req.recs {
		bytes += len(rec.T)
	}
	return len(req.recs), bytes
}

// storeChunk stores a lone chunk under its textID, so that a resend of it
// within the stream's duplicate window is not stored twice. An ID
// JetStream has seen may be another chunk's all the same: the room forgot
// the user (past its senders limit, room.Config), who then numbered from
// 1 again within the window. Taken for stored, such a chunk was
// acknowledged and in no record. So a duplicate is checked against the
// record stored under the ID (a rare read: resends after a failover), and
// a chunk that is not that record's is stored under an ID of its own,
// the first's stream sequence added, which its own resends share.
func (f *feed) storeChunk(ctx context.Context, rec record) error {
	id := textID(f.room, rec.User, rec.Dev, rec.Seq)
	for range 3 {
		seq, dup, err := f.e.publishAck(ctx, f.room, rec, id)
		if err != nil {
			return err
		}
		f.noteStored(seq) // a duplicate's seq is the chunk's, stored before
		if !dup {
			return nil
		}
		stored, err := f.e.storedRecord(ctx, f.room, seq)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			// Trimmed since (the room's limit of records): not this
			// chunk's to stand for.
		case err != nil:
			return err
		case stored.Op == rec.Op && stored.User == rec.User && stored.Dev == rec.Dev && stored.Seq == rec.Seq && stored.T == rec.T:
			// A resend of the chunk stored. (A forgotten sender's new
			// chunk with the very text of the old one under the same
			// seq is taken for it too: nothing tells them apart.)
			return nil
		}
		id = textID(f.room, rec.User, rec.Dev, rec.Seq) + "@" + strconv.FormatUint(seq, 10)
	}
	return fmt.Errorf("node: storing text for room %s: its ID is another chunk's", f.room)
}

// storeBatch stores the chunks of batch as one record: a text record for
// a lone chunk, a batch record for several.
func (f *feed) storeBatch(batch []*textReq, chunks int) error {
	e := f.e
	ctx, cancel := context.WithTimeout(e.ctx, e.n.cfg.StoreTimeout)
	defer cancel()
	if chunks == 1 {
		return f.storeChunk(ctx, batch[0].recs[0])
	}
	recs := make([]record, 0, chunks)
	for _, req := range batch {
		recs = append(recs, req.recs...)
	}
	// The ID makes the writer's own retries of this batch duplicates; a
	// client's resend makes a new batch, which the room deduplicates.
	id := "batch/" + e.n.cfg.ID + "/" + strconv.FormatUint(e.inc, 36) + "/" + strconv.FormatUint(e.batches.Add(1), 36)
	seq, err := e.publish(ctx, f.room, record{Op: recBatch, Recs: recs}, id)
	if err == nil {
		f.noteStored(seq)
	}
	return err
}

// noteStored notes that the writer stored a record of the room under the
// stream's seq, before it answers the chunks in it.
func (f *feed) noteStored(seq uint64) {
	for {
		old := f.storedThrough.Load()
		if seq <= old || f.storedThrough.CompareAndSwap(old, seq) {
			return
		}
	}
}

// storeTimeout bounds how long a session waits for its chunk: the
// writer's own store of the batch before it, then its own.
func (e *roomEngine) storeTimeout() time.Duration { return 2 * e.n.cfg.StoreTimeout }
