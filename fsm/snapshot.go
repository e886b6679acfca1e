package fsm

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"
)

// Snapshot stream framing:
//
//	magic   "cairn-fsm-snapshot-v1\n"
//	record  uvarint(len(key)) key uvarint(len(value)) value   (key order, len(key) >= 1)
//	end     uvarint(0)
//	seal    XXH64 of every byte before it, 8 bytes big-endian
const snapshotMagic = "cairn-fsm-snapshot-v1\n"

// Bounds that a well-formed snapshot never exceeds; past them the stream is
// treated as corrupt rather than allocated.
const (
	maxSnapshotKey   = 1 << 16
	maxSnapshotValue = 64 << 20
)

// Snapshot is a consistent point-in-time view of the state, to be written
// out with WriteTo and then closed.
type Snapshot struct {
	m     *Machine
	snap  *pebble.Snapshot
	index uint64
}

// Snapshot captures the state as of the last applied entry. It must not
// run concurrently with Apply (raft guarantees this).
func (m *Machine) Snapshot() (*Snapshot, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.db == nil {
		return nil, errClosed
	}
	m.snaps.Add(1)
	return &Snapshot{m: m, snap: m.db.NewSnapshot(), index: m.applied.Load()}, nil
}

// Index is the applied index the snapshot holds.
func (s *Snapshot) Index() uint64 { return s.index }

// WriteTo streams the snapshot in the framing above.
func (s *Snapshot) WriteTo(w io.Writer) (int64, error) {
	d := xxhash.New()
	cw := &countWriter{w: io.MultiWriter(w, d)}
	bw := bufio.NewWriterSize(cw, 256<<10)
	var lenBuf [binary.MaxVarintLen64]byte
	writeLen := func(n int) error {
		_, err := bw.Write(lenBuf[:binary.PutUvarint(lenBuf[:], uint64(n))])
		return err
	}
	if _, err := bw.WriteString(snapshotMagic); err != nil {
		return cw.n, err
	}
	err := scan(s.snap, nil, func(k, v []byte) (bool, error) {
		if err := writeLen(len(k)); err != nil {
			return false, err
		}
		if _, err := bw.Write(k); err != nil {
			return false, err
		}
		if err := writeLen(len(v)); err != nil {
			return false, err
		}
		_, err := bw.Write(v)
		return err == nil, err
	})
	if err != nil {
		return cw.n, fmt.Errorf("write snapshot: %w", err)
	}
	if err := writeLen(0); err != nil {
		return cw.n, err
	}
	if err := bw.Flush(); err != nil {
		return cw.n, err
	}
	seal := binary.BigEndian.AppendUint64(nil, d.Sum64())
	n, err := w.Write(seal)
	return cw.n + int64(n), err
}

// Close releases the snapshot.
func (s *Snapshot) Close() error {
	if s.snap == nil {
		return nil
	}
	err := s.snap.Close()
	s.snap = nil
	s.m.snaps.Done()
	return err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ErrCorruptSnapshot is wrapped by Restore when the stream is not a
// well-formed, intact snapshot.
var ErrCorruptSnapshot = errors.New("corrupt snapshot")

// Restore replaces the whole state with a snapshot stream. The new store is
// built beside the current one and checked against the seal first, so a
// broken stream leaves the current state untouched.
func (m *Machine) Restore(r io.Reader) error {
	tmp := m.dir + ".restore"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("restore: clear %s: %w", tmp, err)
	}
	db, err := openPebble(tmp, m.log)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := load(db, r); err != nil {
		db.Close()
		os.RemoveAll(tmp)
		return fmt.Errorf("restore: %w", err)
	}
	if err := db.LogData(nil, pebble.Sync); err != nil {
		db.Close()
		return fmt.Errorf("restore: sync: %w", err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("restore: close new store: %w", err)
	}
	// Snapshots being written hold the old store open: let them finish.
	m.snaps.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.db != nil {
		if err := m.db.Close(); err != nil {
			return fmt.Errorf("restore: close old store: %w", err)
		}
		m.db = nil
	}
	old := m.dir + ".old"
	if err := os.Rename(m.dir, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("restore: move old store aside: %w", err)
	}
	if err := os.Rename(tmp, m.dir); err != nil {
		return fmt.Errorf("restore: put new store in place: %w", err)
	}
	if err := os.RemoveAll(old); err != nil {
		m.log.Warn("could not remove the replaced state store", "dir", old, "err", err)
	}
	if m.db, err = openPebble(m.dir, m.log); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := m.loadCaches(); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	m.queueHints.reset()
	m.signal()
	return nil
}

// load reads a snapshot stream into an empty store and checks its seal.
func load(db *pebble.DB, r io.Reader) error {
	d := xxhash.New()
	br := bufio.NewReaderSize(r, 256<<10)
	tr := &teeByteReader{r: br, d: d}
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(tr, magic); err != nil || string(magic) != snapshotMagic {
		return fmt.Errorf("%w: bad header", ErrCorruptSnapshot)
	}
	b := db.NewBatch()
	records := 0
	for {
		klen, err := binary.ReadUvarint(tr)
		if err != nil {
			return fmt.Errorf("%w: record %d: %v", ErrCorruptSnapshot, records, err)
		}
		if klen == 0 {
			break
		}
		if klen > maxSnapshotKey {
			return fmt.Errorf("%w: record %d: key of %d bytes", ErrCorruptSnapshot, records, klen)
		}
		key := make([]byte, klen)
		if _, err := io.ReadFull(tr, key); err != nil {
			return fmt.Errorf("%w: record %d: %v", ErrCorruptSnapshot, records, err)
		}
		vlen, err := binary.ReadUvarint(tr)
		if err != nil || vlen > maxSnapshotValue {
			return fmt.Errorf("%w: record %d: bad value length", ErrCorruptSnapshot, records)
		}
		val := make([]byte, vlen)
		if _, err := io.ReadFull(tr, val); err != nil {
			return fmt.Errorf("%w: record %d: %v", ErrCorruptSnapshot, records, err)
		}
		if err := b.Set(key, val, nil); err != nil {
			return err
		}
		records++
		if b.Len() > 4<<20 {
			if err := b.Commit(pebble.NoSync); err != nil {
				return err
			}
			b = db.NewBatch()
		}
	}
	want := d.Sum64()
	var seal [8]byte
	if _, err := io.ReadFull(br, seal[:]); err != nil {
		return fmt.Errorf("%w: missing seal", ErrCorruptSnapshot)
	}
	if got := binary.BigEndian.Uint64(seal[:]); got != want {
		return fmt.Errorf("%w: seal %016x does not match content %016x", ErrCorruptSnapshot, got, want)
	}
	return b.Commit(pebble.NoSync)
}

// teeByteReader feeds every byte it reads into the digest.
type teeByteReader struct {
	r   *bufio.Reader
	d   *xxhash.Digest
	one [1]byte
}

func (t *teeByteReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.d.Write(p[:n])
	return n, err
}

func (t *teeByteReader) ReadByte() (byte, error) {
	c, err := t.r.ReadByte()
	if err == nil {
		t.one[0] = c
		t.d.Write(t.one[:])
	}
	return c, err
}
