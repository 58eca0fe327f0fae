package atomicfile_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"

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
