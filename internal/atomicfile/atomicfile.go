// Package atomicfile owns the one way qrauth replaces a file that must
// never be seen half-written (the app's device state and offline keys,
// the badge files qrauthd writes): a temporary file in the same directory,
// fsynced, renamed over the old one, and the directory fsynced so that the
// rename survives a crash. A reader sees the old file or the new one.
// ReadPrivate is its reading side for files that hold a secret.
package atomicfile

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// Write writes data to path with mode perm. The directory must exist. On
// error the old file, if any, is untouched and no temporary file is left.
func Write(path string, data []byte, perm fs.FileMode) error {
	_, err := WriteFrom(path, bytes.NewReader(data), perm, Options{})
	return err
}

// Options tune WriteFrom.
type Options struct {
	// NoReplace leaves an existing file at path alone: WriteFrom then
	// fails with an error wrapping fs.ErrExist, decided at the moment the
	// new file would take its place.
	NoReplace bool

	// Check, if not nil, is called with the temporary file's path once it
	// is complete and synced; an error keeps the new file from path.
	Check func(tmp string) error
}

// WriteFrom is Write for data that arrives as a stream too big to hold in
// memory (a database backup): it copies r to a temporary file in path's
// directory and puts it at path only once all of it is on disk and Check
// passed. It returns the bytes copied. On error nothing is left behind and
// the old file, if any, is untouched.
func WriteFrom(path string, r io.Reader, perm fs.FileMode, o Options) (int64, error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*.tmp") // mode 0600
	if err != nil {
		return 0, err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	// Windows has no Unix modes to set.
	if err := f.Chmod(perm); err != nil && runtime.GOOS != "windows" {
		f.Close()
		return 0, err
	}
	n, err := io.Copy(f, r)
	if err != nil {
		f.Close()
		return n, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return n, err
	}
	if err := f.Close(); err != nil {
		return n, err
	}
	if o.Check != nil {
		if err := o.Check(tmp); err != nil {
			return n, err
		}
	}
	if o.NoReplace {
		// A hard link fails if path exists, atomically: no window in
		// which another writer's file could be replaced. The temporary
		// name is removed by the deferred Remove.
		if err := os.Link(tmp, path); err != nil {
			return n, err
		}
	} else if err := os.Rename(tmp, path); err != nil {
		return n, err
	}
	// Make the rename durable; not every platform can sync a directory.
	if df, err := os.Open(dir); err == nil {
		df.Sync()
		df.Close()
	}
	return n, nil
}

// ModeError is ReadPrivate's refusal of a file that group or others may
// read or write.
type ModeError struct {
	Path string
	Mode fs.FileMode
}

func (e *ModeError) Error() string {
	return fmt.Sprintf("%s has mode %04o, open to other users", e.Path, e.Mode)
}

// ReadPrivate reads at most max bytes of a file that Write wrote with mode
// 0600 and that holds a secret: a file group or others may read or write
// is refused with a *ModeError before it is read (except on Windows, which
// has no Unix modes). A missing file is an error wrapping fs.ErrNotExist.
func ReadPrivate(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, &ModeError{Path: path, Mode: fi.Mode().Perm()}
	}
	return io.ReadAll(io.LimitReader(f, max))
}
