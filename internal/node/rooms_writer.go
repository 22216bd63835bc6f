package node

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// The text writer of a feed: group commit of a room's text on one node.
//
// A session stores its text chunk by handing it to the writer of the
// room's feed and waiting for the answer (its reader stays blocked, so a
// session has one chunk in flight and its chunks are stored in the order
// sent). The writer takes the chunks in the order they came; while one
// record is being stored, the chunks that arrive meanwhile wait, and the
// next record carries all of them, up to maxBatchChunks and
// maxBatchBytes, as one batch record (room.OpBatch). A lone chunk is
// stored as a plain text record under its message ID, as before.
//
// On an idle room this adds nothing: a chunk that finds the writer free
// is stored at once. Under load the batches grow with the time a record
// takes to store, so one replicated write, one consumer delivery to each
// node and one socket write to each member carry several keystrokes, and
// the work per keystroke falls as the load rises instead of piling up.
//
// What an ack promises does not change: a chunk is acknowledged once the
// record holding it is stored on a quorum. A batch is stored whole or not
// at all; when it is not, every session in it gets `unavailable` for its
// chunk and resends it, and the room drops whatever part of a resend was
// stored after all by (sender, seq).

// Bounds of one batch record.
const (
	maxBatchChunks = 64
	maxBatchBytes  = 64 << 10
)

// textReq is one session's chunks waiting for the writer, in the order
// sent.
type textReq struct {
	recs []record
	done chan error    // buffered: the writer never blocks on it
	hold chan struct{} // tests: not a chunk; the writer waits until it closes
}

// storeText stores recs, text chunks of one session in the order sent,
// through the feed's writer and returns once the record holding them is
// stored, or the store failed, or ctx ended.
func (f *feed) storeText(ctx context.Context, recs []record) error {
	req := &textReq{recs: recs, done: make(chan error, 1)}
	select {
	case f.texts <- req:
	case <-f.ctx.Done():
		return errFeedClosed
	case <-ctx.Done():
		return fmt.Errorf("node: waiting to store text in room %s: %w", f.room, ctx.Err())
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("node: storing text in room %s: %w", f.room, ctx.Err())
	}
}

// writeTexts is the writer's goroutine: it stores the chunks handed to
// it, batching those that wait, until the feed is released. Chunks still
// queued then are answered errFeedClosed.
func (f *feed) writeTexts() {
	e := f.e
	batch := make([]*textReq, 0, maxBatchChunks)
	for {
		var first *textReq
		select {
		case first = <-f.texts:
		case <-f.ctx.Done():
			for {
				select {
				case req := <-f.texts:
					req.done <- errFeedClosed
				default:
					return
				}
			}
		}
		if first.hold != nil {
			select {
			case <-first.hold:
			case <-f.ctx.Done():
			}
			continue
		}
		batch = append(batch[:0], first)
		chunks, size := first.size()
	gather:
		for chunks < maxBatchChunks && size < maxBatchBytes {
			select {
			case req := <-f.texts:
				batch = append(batch, req)
				c, b := req.size()
				chunks, size = chunks+c, size+b
			default:
				break gather
			}
		}
		err := f.storeBatch(batch, chunks)
		for _, req := range batch {
			req.done <- err
		}
		e.metrics.batchChunks.Observe(float64(chunks))
	}
}

// size is the request's chunks and text bytes.
func (req *textReq) size() (chunks, bytes int) {
	for _, rec := range req.recs {
		bytes += len(rec.T)
	}
	return len(req.recs), bytes
}

// storeBatch stores the chunks of batch as one record: a text record for
// a lone chunk, a batch record for several.
func (f *feed) storeBatch(batch []*textReq, chunks int) error {
	e := f.e
	ctx, cancel := context.WithTimeout(e.ctx, e.n.cfg.StoreTimeout)
	defer cancel()
	if chunks == 1 {
		rec := batch[0].recs[0]
		_, err := e.publish(ctx, f.room, rec, textID(f.room, rec.User, rec.Seq))
		return err
	}
	recs := make([]record, 0, chunks)
	for _, req := range batch {
		recs = append(recs, req.recs...)
	}
	// The ID makes the writer's own retries of this batch duplicates; a
	// client's resend makes a new batch, which the room deduplicates.
	id := "batch/" + e.n.cfg.ID + "/" + strconv.FormatUint(e.inc, 36) + "/" + strconv.FormatUint(e.batches.Add(1), 36)
	_, err := e.publish(ctx, f.room, record{Op: recBatch, Recs: recs}, id)
	return err
}

// storeTimeout bounds how long a session waits for its chunk: the
// writer's own store of the batch before it, then its own.
func (e *roomEngine) storeTimeout() time.Duration { return 2 * e.n.cfg.StoreTimeout }
