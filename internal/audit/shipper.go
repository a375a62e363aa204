package audit

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"time"
)

// batcher is what the shipper needs of a Destination.
type batcher interface {
	NewBatch() Batch
}

// shipBatch is a destination's Batch and how many rows of each kind it
// holds, counted as shipped once the destination acknowledged them.
type shipBatch struct {
	Batch
	kinds  [numKinds]int
	oldest time.Time // the earliest row time in the batch, for the ship lag
	bytes  int       // the rows' spooled bytes
}

// add adds r, n bytes as spooled.
func (b *shipBatch) add(r Record, n int) {
	b.Batch.Add(r)
	b.bytes += n
	b.kinds[r.kind()]++
	if t := recordTime(r); !t.IsZero() && (b.oldest.IsZero() || t.Before(b.oldest)) {
		b.oldest = t
	}
}

func (b *shipBatch) reset() {
	b.Batch.Reset()
	b.kinds = [numKinds]int{}
	b.oldest = time.Time{}
	b.bytes = 0
}

// shipper sends sealed segments to the destination in batches of up to
// batchSize rows or batchBytes, and deletes a segment once every row in it was sent.
// Two goroutines share the work so that decoding the next batch overlaps
// the INSERT of the previous one: the reader decodes segments into a
// batch and hands it, with the segments it completes, to the sender,
// which writes batches strictly in order and deletes each batch's
// segments after it was acknowledged. Two batches circulate between them.
type shipper struct {
	s             *spool
	dest          batcher
	batchSize     int
	batchBytes    int
	flushInterval time.Duration // longest a partial batch waits for more rows
	log           *slog.Logger
	m             *metrics

	ctx    context.Context // cancelled to stop at once
	cancel context.CancelFunc
	done   chan struct{}

	jobs chan shipJob    // reader → sender
	free chan *shipBatch // sender → reader: batches to fill again

	// crashBeforeDelete, when set, is asked before deleting sent
	// segments; true stops the shipper there, as a crash would (tests).
	crashBeforeDelete func() bool
}

// shipJob is a batch to send and the segments whose last rows it holds
// (all their other rows are in earlier jobs).
type shipJob struct {
	b    *shipBatch
	segs []segmentInfo
}

func startShipper(s *spool, dest batcher, batchSize, batchBytes int, log *slog.Logger, m *metrics, crash func() bool) *shipper {
	ctx, cancel := context.WithCancel(context.Background())
	sh := &shipper{
		s: s, dest: dest, batchSize: batchSize, batchBytes: batchBytes, flushInterval: s.sealEvery, log: log, m: m, ctx: ctx, cancel: cancel,
		done: make(chan struct{}), jobs: make(chan shipJob, 1), free: make(chan *shipBatch, 2),
		crashBeforeDelete: crash,
	}
	sh.free <- &shipBatch{Batch: dest.NewBatch()}
	sh.free <- &shipBatch{Batch: dest.NewBatch()}
	sendDone := make(chan struct{})
	go func() {
		defer close(sendDone)
		sh.sendLoop()
	}()
	go func() {
		sh.readLoop()
		close(sh.jobs)
		<-sendDone
		close(sh.done)
	}()
	return sh
}

// sendLoop writes jobs in order and deletes their segments.
func (sh *shipper) sendLoop() {
	for job := range sh.jobs {
		if job.b.Len() > 0 && !sh.send(job.b) {
			sh.cancel()
			return
		}
		if len(job.segs) > 0 {
			if sh.crashBeforeDelete != nil && sh.crashBeforeDelete() {
				sh.cancel()
				return
			}
			sh.delete(job.segs)
		}
		job.b.reset()
		sh.free <- job.b
	}
}

// readLoop decodes sealed segments into batches until the writer has
// stopped and every segment was read, or the shipper is stopped.
func (sh *shipper) readLoop() {
	var (
		b          *shipBatch
		batchStart time.Time
		queue      []segmentInfo
		consumed   []segmentInfo // read whole since the last job
		sc         scratch
		readBuf    []byte   // the segment being read; reused
		payloads   [][]byte // its records (aliasing readBuf); reused
	)
	// flush hands b and the consumed segments to the sender; false means stop.
	flush := func() bool {
		if b == nil && len(consumed) == 0 {
			return true
		}
		if b == nil {
			if b = sh.batch(); b == nil {
				return false
			}
		}
		select {
		case sh.jobs <- shipJob{b: b, segs: consumed}:
		case <-sh.ctx.Done():
			return false
		}
		b, consumed = nil, nil
		return true
	}
	for {
		if len(queue) == 0 {
			queue = sh.s.takeSealed()
		}
		if len(queue) == 0 {
			// Nothing more to read now. A partial batch waits for more
			// segments until it is flushInterval old (fewer, larger
			// INSERTs: fewer parts for ClickHouse to merge), unless a
			// Drain or Close is waiting. Once the writer has stopped no
			// more segments come: waiting would only spin on writerDone
			// (it is closed) until the interval ends.
			if b != nil && !sh.full(b) && !sh.s.draining() && !sh.s.writerStopped() {
				if wait := sh.flushInterval - time.Since(batchStart); wait > 0 {
					t := time.NewTimer(wait)
					select {
					case <-sh.s.shipWake:
					case <-sh.s.drainWake:
					case <-sh.s.writerDone:
					case <-t.C:
					case <-sh.ctx.Done():
						t.Stop()
						return
					}
					t.Stop()
					continue
				}
			}
			if !flush() {
				return
			}
			select {
			case <-sh.s.writerDone:
				if queue = sh.s.takeSealed(); len(queue) == 0 {
					return
				}
				continue
			default:
			}
			select {
			case <-sh.s.shipWake:
			case <-sh.s.writerDone:
			case <-sh.ctx.Done():
				return
			}
			continue
		}
		seg := queue[0]
		queue = queue[1:]
		data, err := readSegment(seg.path, readBuf)
		readBuf = data[:0]
		if err != nil {
			sh.log.Error("audit spool: reading segment failed; skipping it", "file", seg.path, "err", err)
			if errors.Is(err, fs.ErrNotExist) {
				sh.s.freed(seg.size, 1)
			}
			continue
		}
		clear(payloads)
		var dropped int
		payloads, dropped, err = parseSegmentInto(data, payloads[:0])
		if err != nil {
			bad := seg.path + ".bad"
			sh.log.Error("audit spool: not a segment; moved aside", "file", seg.path, "to", bad, "err", err)
			_ = os.Rename(seg.path, bad)
			sh.s.freed(seg.size, 1)
			continue
		}
		if n := futureRecords(payloads); n > 0 {
			// A newer airlock wrote these (then this one was started in
			// its place): keep the segment whole for a newer airlock, ship
			// none of it, and say so loudly.
			kept := segmentFile(sh.s.dir, seg.seq, futureExt)
			if err := os.Rename(seg.path, kept); err != nil {
				kept = seg.path
			}
			sh.m.futureRecords(n)
			sh.log.Error("audit spool: segment holds records written by a newer airlock in a format this one cannot read; kept unshipped for a newer airlock",
				"file", kept, "records", len(payloads), "newer_records", n, "err", &FutureVersionError{Version: maxVersion(payloads)})
			sh.s.freed(seg.size, 1)
			continue
		}
		if dropped > 0 {
			sh.m.corruptBytes(dropped)
			sh.log.Warn("audit spool: skipped a torn or corrupt tail (left by a crash)", "file", seg.path, "bytes", dropped, "records_read", len(payloads))
		}
		for _, p := range payloads {
			// Decoded in place, strings aliasing the segment's buffer: the
			// batch copies what it keeps (Batch.Add), so it keeps its rows
			// alive, not every segment they came from, and the buffer is
			// read into again.
			r, err := decodeRecord(p, true, &sc)
			if err != nil {
				sh.m.corruptBytes(len(p))
				sh.log.Error("audit spool: undecodable record skipped", "file", seg.path, "err", err)
				continue
			}
			if b == nil {
				if b = sh.batch(); b == nil {
					return
				}
				batchStart = time.Now()
			}
			b.add(r, len(p))
			if sh.full(b) && !flush() {
				return
			}
		}
		consumed = append(consumed, seg)
	}
}

// full reports whether b is to be sent now: batch_size rows or
// batch_bytes (0: no byte bound).
func (sh *shipper) full(b *shipBatch) bool {
	return b.Len() >= sh.batchSize || (sh.batchBytes > 0 && b.bytes >= sh.batchBytes)
}

// readSegment reads the file at path into buf (grown as needed).
func readSegment(path string, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return buf[:0], err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return buf[:0], err
	}
	n := int(fi.Size())
	if cap(buf) < n {
		buf = make([]byte, n, n+n/8)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(f, buf); err != nil {
		return buf[:0], err
	}
	return buf, nil
}

// batch waits for an empty batch; nil when the shipper is stopped.
func (sh *shipper) batch() *shipBatch {
	select {
	case b := <-sh.free:
		return b
	case <-sh.ctx.Done():
		return nil
	}
}

// send writes b, retrying with backoff until it succeeds or the shipper
// is stopped (false).
func (sh *shipper) send(b *shipBatch) bool {
	backoff := 100 * time.Millisecond
	var failingSince time.Time
	var lastLog time.Time
	for {
		start := time.Now()
		err := b.Send(sh.ctx)
		if err == nil {
			sh.m.shipSecs.Observe(time.Since(start).Seconds())
			sh.m.wrote(b.oldest, time.Now())
			for k, n := range b.kinds {
				if n > 0 {
					sh.m.ship(shipLabel[k], n)
				}
			}
			if !failingSince.IsZero() {
				sh.log.Info("audit: ClickHouse accepts rows again; catching up", "down_for", time.Since(failingSince).Round(time.Millisecond))
			}
			return true
		}
		if sh.ctx.Err() != nil {
			return false
		}
		sh.m.shipError()
		if failingSince.IsZero() {
			failingSince = start
		}
		if time.Since(lastLog) >= 30*time.Second {
			lastLog = time.Now()
			sh.log.Warn("audit: writing to ClickHouse failed; rows stay in the spool and are retried", "rows", b.Len(), "err", err)
		}
		select {
		case <-time.After(backoff):
		case <-sh.ctx.Done():
			return false
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (sh *shipper) delete(segs []segmentInfo) {
	var n int64
	k := 0
	for _, seg := range segs {
		if err := os.Remove(seg.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			sh.log.Error("audit spool: deleting a shipped segment failed (its rows will be sent again after a restart)", "file", seg.path, "err", err)
			continue
		}
		n += seg.size
		k++
	}
	sh.s.freed(n, k)
}

// futureRecords counts the payloads of a format newer than this airlock
// reads.
func futureRecords(payloads [][]byte) int {
	n := 0
	for _, p := range payloads {
		if payloadVersion(p) > recordVersion {
			n++
		}
	}
	return n
}

// maxVersion is the newest format among payloads.
func maxVersion(payloads [][]byte) int {
	v := 0
	for _, p := range payloads {
		v = max(v, payloadVersion(p))
	}
	return v
}
