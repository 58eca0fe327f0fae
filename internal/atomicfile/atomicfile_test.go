package atomicfile_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/qrauth/qrauth/internal/atomicfile"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	for _, data := range []string{"first", "second, longer"} {
		if err := atomicfile.Write(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(path); err != nil || string(got) != data {
			t.Fatalf("read %q, %v; want %q", got, err, data)
		}
	}
	if fi, err := os.Stat(path); err != nil {
		t.Fatal(err)
	} else if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("%d files in the directory, want only the target", len(ents))
	}

	t.Run("ErrNoDir", func(t *testing.T) {
		if err := atomicfile.Write(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600); err == nil {
			t.Fatal("write into a missing directory succeeded")
		}
	})
}

func TestReadPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key.json")
	if _, err := atomicfile.ReadPrivate(path, 100); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if err := atomicfile.Write(path, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := atomicfile.ReadPrivate(path, 4); err != nil || string(got) != "0123" {
		t.Fatalf("ReadPrivate = %q, %v", got, err)
	}
	if runtime.GOOS == "windows" {
		return
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	var me *atomicfile.ModeError
	if _, err := atomicfile.ReadPrivate(path, 100); !errors.As(err, &me) || me.Mode != 0o640 {
		t.Fatalf("group-readable file: %v", err)
	}
}

func TestWriteFrom(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "backup.db")
	onlyTarget := func(t *testing.T) {
		t.Helper()
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Fatalf("%d files in the directory, want only the target", len(ents))
		}
	}
	if n, err := atomicfile.WriteFrom(path, strings.NewReader("old"), 0o600, atomicfile.Options{NoReplace: true}); err != nil || n != 3 {
		t.Fatalf("first write: %d, %v", n, err)
	}
	keeps := func(t *testing.T, want string) {
		t.Helper()
		if got, _ := os.ReadFile(path); string(got) != want {
			t.Fatalf("file holds %q, want %q", got, want)
		}
		onlyTarget(t)
	}

	t.Run("ErrExist", func(t *testing.T) {
		_, err := atomicfile.WriteFrom(path, strings.NewReader("new"), 0o600, atomicfile.Options{NoReplace: true})
		if !errors.Is(err, fs.ErrExist) {
			t.Fatalf("NoReplace over an existing file: %v, want fs.ErrExist", err)
		}
		keeps(t, "old")
	})
	t.Run("CheckFails", func(t *testing.T) {
		var seen string
		_, err := atomicfile.WriteFrom(path, strings.NewReader("bad"), 0o600, atomicfile.Options{Check: func(tmp string) error {
			b, _ := os.ReadFile(tmp)
			seen = string(b)
			return errors.New("not a database")
		}})
		if err == nil || seen != "bad" {
			t.Fatalf("check saw %q, WriteFrom returned %v", seen, err)
		}
		keeps(t, "old")
	})
	t.Run("ReadFails", func(t *testing.T) {
		r := io.MultiReader(strings.NewReader("partial"), iotest.ErrReader(io.ErrUnexpectedEOF))
		if _, err := atomicfile.WriteFrom(path, r, 0o600, atomicfile.Options{}); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut-off stream: %v", err)
		}
		keeps(t, "old")
	})
	t.Run("Replace", func(t *testing.T) {
		if _, err := atomicfile.WriteFrom(path, strings.NewReader("new"), 0o600, atomicfile.Options{}); err != nil {
			t.Fatal(err)
		}
		keeps(t, "new")
	})
}
