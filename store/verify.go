package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"runtime/debug"

	"github.com/qrauth/qrauth"
)

// ErrDamaged is returned (wrapped) by Open and VerifyFile for a file that is
// not a whole bbolt database: truncated, overwritten or not a database at
// all. The server must not start on such a file: bbolt maps it into memory
// and trusts its page numbers, so a page past the end of the file is a fault
// that kills the process, not an error.
var ErrDamaged = errors.New("database file is damaged")

// bbolt's on-disk meta page (go.etcd.io/bbolt/internal/common): a 16-byte
// page header, then magic, version, page size, flags (4 bytes each), the
// root bucket (root page, sequence), the freelist page, the high-water page
// id, the transaction id and an FNV-64a checksum of everything before it,
// all in the machine's byte order (little-endian on every platform we ship).
const (
	boltMagic       = 0xED0CDAED
	boltVersion     = 2
	metaOffset      = 16
	metaChecksumEnd = metaOffset + 56
	metaLen         = metaChecksumEnd + 8
	noFreelist      = ^uint64(0)
)

type boltMeta struct {
	pageSize, freelist, pgid, txid, root uint64
}

// parseMeta decodes and validates one meta page.
func parseMeta(b []byte) (boltMeta, error) {
	if len(b) < metaLen {
		return boltMeta{}, errors.New("meta page cut short")
	}
	le := binary.LittleEndian
	m := b[metaOffset:]
	if le.Uint32(m[0:]) != boltMagic {
		return boltMeta{}, errors.New("not a bbolt meta page (bad magic)")
	} else if v := le.Uint32(m[4:]); v != boltVersion {
		return boltMeta{}, fmt.Errorf("bbolt format version %d, want %d", v, boltVersion)
	}
	h := fnv.New64a()
	h.Write(b[metaOffset:metaChecksumEnd])
	if h.Sum64() != le.Uint64(b[metaChecksumEnd:]) {
		return boltMeta{}, errors.New("meta page checksum mismatch")
	}
	meta := boltMeta{
		pageSize: uint64(le.Uint32(m[8:])),
		root:     le.Uint64(m[16:]),
		freelist: le.Uint64(m[32:]),
		pgid:     le.Uint64(m[40:]),
		txid:     le.Uint64(m[48:]),
	}
	switch {
	case meta.pageSize < 1024 || meta.pageSize > 1<<20 || meta.pageSize&(meta.pageSize-1) != 0:
		return boltMeta{}, fmt.Errorf("implausible page size %d", meta.pageSize)
	case meta.pgid < 2 || meta.root >= meta.pgid:
		return boltMeta{}, fmt.Errorf("root page %d outside the %d pages in use", meta.root, meta.pgid)
	case meta.freelist != noFreelist && meta.freelist >= meta.pgid:
		return boltMeta{}, fmt.Errorf("freelist page %d outside the %d pages in use", meta.freelist, meta.pgid)
	}
	return meta, nil
}

// VerifyFile checks, without mapping it, that the file at path is a whole
// bbolt database: at least one valid meta page, and the file at least as
// long as the pages that meta page says are in use. A missing or empty file
// is fine (Open creates the database). It is what stops a truncated file
// from crashing the server on its first read past the end.
func VerifyFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size == 0 {
		return nil
	}
	damaged := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrDamaged, fmt.Sprintf(format, args...))
	}
	read := func(off int64) []byte {
		b := make([]byte, metaLen)
		n, _ := f.ReadAt(b, off)
		return b[:n]
	}
	// Meta page 0 gives the page size, which places meta page 1. bbolt
	// writes them alternately, so either may be the newer or the torn one.
	m0, err0 := parseMeta(read(0))
	var m1 boltMeta
	err1 := errors.New("no second meta page found")
	if err0 == nil {
		m1, err1 = parseMeta(read(int64(m0.pageSize)))
	} else {
		for ps := int64(1024); ps <= 64<<10; ps *= 2 {
			if m, err := parseMeta(read(ps)); err == nil && uint64(ps) == m.pageSize {
				m1, err1 = m, nil
				break
			}
		}
	}
	var m boltMeta
	switch {
	case err0 != nil && err1 != nil:
		if size < int64(metaLen) {
			return damaged("%d bytes is too short for a database", size)
		}
		return damaged("no valid meta page (%v; %v)", err0, err1)
	case err0 != nil:
		m = m1
	case err1 != nil:
		m = m0
	case m1.txid > m0.txid:
		m = m1
	default:
		m = m0
	}
	if need := m.pgid * m.pageSize; uint64(size) < need {
		return damaged("the file has %d bytes but its pages in use need %d: it was truncated", size, need)
	}
	return nil
}

// guard runs fn with faults on the mapped file turned into panics, and any
// panic (a fault, or one of bbolt's assertions on a damaged page) turned
// into an error, so that a damaged page fails one call (storeError makes it EINTERNAL) instead of ending
// the process. SetPanicOnFault is per goroutine, hence set on every call.
func guard(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w (panic: %v)", ErrDamaged, p)
		}
	}()
	return fn()
}

// WeakPublicKey reports whether key is not a safe Ed25519 public key (see
// qrauth.CheckPublicKey, the one definition): ed25519.Verify accepts forged
// signatures against small-order keys.
func WeakPublicKey(key []byte) bool { return qrauth.CheckPublicKey(key) != nil }
