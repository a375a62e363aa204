package grants

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
)

// File names inside a FileStore directory.
const (
	walFile      = "grants.log"
	snapshotFile = "grants.snapshot"
	lockFile     = "LOCK"
)

// DefaultCompactBytes is when the log is folded into a new snapshot.
const DefaultCompactBytes = 8 << 20

// FileStoreOptions tune a FileStore.
type FileStoreOptions struct {
	// CompactBytes: when the log grows past this size (and past the last
	// snapshot's size), the store writes a new snapshot and empties the
	// log. Default DefaultCompactBytes.
	CompactBytes int64
	Logger       *slog.Logger
}

// FileStore is the embedded, crash-safe store: a write-ahead log of
// mutations, each framed with checksums and fsynced before Apply returns,
// folded now and then into a snapshot written beside it (temporary file,
// fsync, rename, fsync of the directory). Recovery reads the snapshot,
// replays the log records after it, and cuts off a torn last record; an
// acknowledged record is never lost. One process at a time may open a
// directory (an advisory lock).
type FileStore struct {
	dir  string
	log  *slog.Logger
	lock *os.File

	mu        sync.Mutex
	wal       *os.File
	walSize   int64
	snapSize  int64
	compactAt int64
	seq       uint64 // of the last record written
	rs        records
	broken    error
	buf       []byte
}

var (
	_ Store  = (*FileStore)(nil)
	_ lender = (*FileStore)(nil)
)

// walRecord is one log record: a numbered mutation.
type walRecord struct {
	Seq uint64 `json:"seq"`
	Mutation
}

// snapshotDoc is the snapshot's payload: every record as of Seq.
type snapshotDoc struct {
	Seq uint64 `json:"seq"`
	Snapshot
}

// OpenFileStore opens (creating if needed) the store in dir and recovers
// its contents.
func OpenFileStore(dir string, opts FileStoreOptions) (*FileStore, error) {
	if dir == "" {
		return nil, fmt.Errorf("grant store: no directory given: %w", ErrInvalid)
	}
	s := &FileStore{dir: dir, log: opts.Logger, compactAt: opts.CompactBytes, rs: newRecords()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.compactAt <= 0 {
		s.compactAt = DefaultCompactBytes
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("grant store: %w", err)
	}
	lock, err := lockDir(filepath.Join(dir, lockFile))
	if err != nil {
		return nil, fmt.Errorf("grant store %s: %w", dir, err)
	}
	s.lock = lock
	if err := s.recover(); err != nil {
		_ = lock.Close()
		return nil, err
	}
	return s, nil
}

// recover loads the snapshot and replays the log.
func (s *FileStore) recover() error {
	in := make(interner)
	snapPath := filepath.Join(s.dir, snapshotFile)
	data, err := os.ReadFile(snapPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("grant store: %w", err)
	default:
		doc, err := readSnapshot(data, snapPath)
		if err != nil {
			return err
		}
		s.seq = doc.Seq
		s.snapSize = int64(len(data))
		m := Mutation{Requests: doc.Requests, Grants: doc.Grants}
		in.mutation(&m)
		s.rs.apply(&m)
	}

	walPath := filepath.Join(s.dir, walFile)
	data, err = os.ReadFile(walPath)
	if errors.Is(err, fs.ErrNotExist) {
		if err := createFile(s.dir, walFile, []byte(walMagic)); err != nil {
			return err
		}
		data = []byte(walMagic)
	} else if err != nil {
		return fmt.Errorf("grant store: %w", err)
	}
	if len(data) < len(walMagic) {
		// The log is created whole by rename, so a short one is damage.
		return fmt.Errorf("%s: %d bytes, shorter than its header: %w", walPath, len(data), ErrCorrupt)
	}
	if string(data[:len(walMagic)]) != walMagic {
		return fmt.Errorf("%s: not an airlock grant log (unknown header): %w", walPath, ErrCorrupt)
	}
	scan, err := scanFrames(data, len(walMagic), walPath)
	if err != nil {
		return err
	}
	snapSeq := s.seq
	for i, p := range scan.frames {
		var rec walRecord
		if err := json.Unmarshal(p, &rec); err != nil {
			return fmt.Errorf("%s: record %d: %v: %w", walPath, i, err, ErrCorrupt)
		}
		if rec.Seq <= snapSeq {
			continue // already in the snapshot (a crash between snapshot and log reset)
		}
		if rec.Seq != s.seq+1 {
			return fmt.Errorf("%s: record %d has sequence %d after %d: %w", walPath, i, rec.Seq, s.seq, ErrCorrupt)
		}
		in.mutation(&rec.Mutation)
		s.rs.apply(&rec.Mutation)
		s.seq = rec.Seq
	}
	f, err := os.OpenFile(walPath, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("grant store: %w", err)
	}
	if scan.end < len(data) {
		s.log.Warn("grant store: cutting off a torn last log record (a write cut short by a crash; it was never acknowledged)",
			"file", walPath, "offset", scan.end, "bytes", len(data)-scan.end)
		if err := f.Truncate(int64(scan.end)); err != nil {
			_ = f.Close()
			return fmt.Errorf("grant store: truncating the torn tail of %s: %w", walPath, err)
		}
		if err := f.Sync(); err != nil {
			_ = f.Close()
			return fmt.Errorf("grant store: %w", err)
		}
	}
	s.wal = f
	s.walSize = int64(scan.end)
	return nil
}

func readSnapshot(data []byte, path string) (snapshotDoc, error) {
	if len(data) < len(snapshotMagic) || string(data[:len(snapshotMagic)]) != snapshotMagic {
		return snapshotDoc{}, fmt.Errorf("%s: not an airlock grant snapshot (unknown header): %w", path, ErrCorrupt)
	}
	// A snapshot is renamed into place only when complete and synced, so
	// anything but exactly one good frame is damage.
	scan, err := scanFrames(data, len(snapshotMagic), path)
	if err != nil {
		return snapshotDoc{}, err
	}
	if len(scan.frames) != 1 || scan.end != len(data) {
		return snapshotDoc{}, fmt.Errorf("%s: damaged (want one whole frame): %w", path, ErrCorrupt)
	}
	var doc snapshotDoc
	if err := json.Unmarshal(scan.frames[0], &doc); err != nil {
		return snapshotDoc{}, fmt.Errorf("%s: %v: %w", path, err, ErrCorrupt)
	}
	return doc, nil
}

func (s *FileStore) lentRequest(id string, version uint64) *Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rs.lentRequest(id, version)
}

func (s *FileStore) lentGrant(id string, version uint64) *Grant {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rs.lentGrant(id, version)
}

// Load returns a copy of every record.
func (s *FileStore) Load(context.Context) (Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rs.snapshot(), nil
}

// Apply appends m to the log and fsyncs it before returning. A failed
// write is cut off again; a failed fsync leaves the log in an unknown
// state, so the store then refuses every write (ErrStoreBroken) until it is
// reopened, which recovers what reached the disk.
func (s *FileStore) Apply(_ context.Context, m Mutation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != nil {
		return fmt.Errorf("%w: %v", ErrStoreBroken, s.broken)
	}
	if s.wal == nil {
		return ErrClosed
	}
	if err := s.rs.check(&m); err != nil {
		return err
	}
	payload, err := json.Marshal(walRecord{Seq: s.seq + 1, Mutation: m})
	if err != nil {
		return fmt.Errorf("grant store: encoding a record: %w", err)
	}
	if len(payload) > maxFrame {
		return fmt.Errorf("grant store: a record of %d bytes is over the %d-byte limit: %w", len(payload), maxFrame, ErrInvalid)
	}
	s.buf = appendFrame(s.buf[:0], payload)
	if _, err := s.wal.Write(s.buf); err != nil {
		if terr := s.wal.Truncate(s.walSize); terr != nil {
			s.broken = fmt.Errorf("write: %v; cutting it off: %v", err, terr)
		}
		return fmt.Errorf("grant store: writing the log: %w", err)
	}
	if err := s.wal.Sync(); err != nil {
		s.broken = fmt.Errorf("fsync of the log: %v", err)
		return fmt.Errorf("grant store: fsync of the log: %w", err)
	}
	s.walSize += int64(len(s.buf))
	s.seq++
	c := cloneMutation(&m)
	s.rs.apply(&c)
	if s.walSize > max(s.compactAt, s.snapSize) {
		if err := s.compact(); err != nil {
			// Everything is still in the log; compaction is retried at the next write.
			s.log.Error("grant store: compaction failed; the log keeps growing", "dir", s.dir, "error", err)
		}
	}
	return nil
}

// compact writes every record into a new snapshot and empties the log.
// Crash-safe at each step: the snapshot replaces the old one by rename
// only once synced, and log records it already holds are skipped on
// recovery by sequence number.
func (s *FileStore) compact() error {
	payload, err := json.Marshal(snapshotDoc{Seq: s.seq, Snapshot: s.rs.snapshot()})
	if err != nil {
		return err
	}
	data := appendFrame([]byte(snapshotMagic), payload)
	if err := createFile(s.dir, snapshotFile, data); err != nil {
		return err
	}
	s.snapSize = int64(len(data))
	if err := s.wal.Truncate(int64(len(walMagic))); err != nil {
		return fmt.Errorf("emptying the log: %w", err)
	}
	if err := s.wal.Sync(); err != nil {
		s.broken = fmt.Errorf("fsync of the emptied log: %v", err)
		return err
	}
	s.walSize = int64(len(walMagic))
	return nil
}

// rewrite replaces every record with snap's and writes them as a new
// snapshot, emptying the log: no earlier version of a record stays in
// either file (see rewriter). The sequence moves on, so a log record from
// before cannot be replayed over the new snapshot.
func (s *FileStore) rewrite(_ context.Context, snap Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken != nil {
		return fmt.Errorf("%w: %v", ErrStoreBroken, s.broken)
	}
	if s.wal == nil {
		return ErrClosed
	}
	s.rs = recordsOf(snap)
	s.seq++
	return s.compact()
}

// Close closes the log and releases the directory.
func (s *FileStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.wal != nil {
		err = s.wal.Close()
		s.wal = nil
	}
	if s.lock != nil {
		err = errors.Join(err, s.lock.Close())
		s.lock = nil
	}
	return err
}

// createFile writes name in dir atomically and durably: a temporary file,
// fsync, rename, fsync of the directory.
func createFile(dir, name string, data []byte) error {
	tmp, err := os.CreateTemp(dir, name+".tmp-*")
	if err != nil {
		return fmt.Errorf("grant store: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("grant store: writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("grant store: fsync of %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("grant store: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("grant store: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("grant store: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("grant store: fsync of directory %s: %w", dir, err)
	}
	return nil
}
