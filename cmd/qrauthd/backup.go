package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"

	"github.com/qrauth/qrauth/internal/atomicfile"
	"github.com/qrauth/qrauth/store"
	"github.com/qrauth/qrauth/wire"
)

// Backups (docs/operations.md): `qrauthd admin backup FILE` asks the
// running server for a consistent copy over the operator socket;
// `qrauthd backup FILE` copies the file of a stopped server. Both write
// FILE the same way: whole or not at all, checked before it takes its
// place, never over an existing file unless -force.

// parseBackupArgs reads [-force] FILE.
func parseBackupArgs(name string, args []string) (file string, force bool, err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&force, "force", false, "replace FILE if it exists")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		return "", false, errUsage
	}
	return fs.Arg(0), force, nil
}

// writeBackup writes the copy that fill produces to file. Before the copy
// takes file's place it must have the announced size (size < 0: unknown)
// and open read-only as a database this program reads. It returns the
// copy's schema version and size.
func writeBackup(file string, force bool, fill io.Reader, size int64) (version uint64, n int64, err error) {
	if !force {
		// Fail before the copy is made; WriteFrom checks again at the end.
		if _, err := os.Lstat(file); err == nil {
			return 0, 0, fmt.Errorf("%s exists: give -force to replace it", file)
		}
	}
	n, err = atomicfile.WriteFrom(file, fill, 0o600, atomicfile.Options{NoReplace: !force, Check: func(tmp string) error {
		// The transport reports a short body; this is the last guard.
		if fi, err := os.Stat(tmp); err != nil {
			return err
		} else if size >= 0 && fi.Size() != size {
			return fmt.Errorf("received %d of %d bytes", fi.Size(), size)
		}
		db, err := store.Open(tmp, store.Options{ReadOnly: true})
		if err != nil {
			return fmt.Errorf("the copy does not open: %w", err)
		}
		defer db.Close()
		version, err = db.Version()
		return err
	}})
	if errors.Is(err, fs.ErrExist) {
		return 0, n, fmt.Errorf("%s was created meanwhile: give -force to replace it", file)
	}
	return version, n, err
}

func adminBackup(ctx context.Context, cl *adminClient, args []string, out io.Writer) error {
	file, force, err := parseBackupArgs("qrauthd admin backup", args)
	if err != nil {
		return err
	}
	var version uint64
	var n int64
	err = cl.download(ctx, wire.PathAdminBackup, func(body io.Reader, size int64) (err error) {
		version, n, err = writeBackup(file, force, body, size)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: %d bytes, schema version %d; keep the master key apart from it (docs/operations.md)\n", file, n, version)
	return nil
}

// download GETs path and hands fn the body and its announced length. It
// has no overall timeout, unlike do: a large copy takes as long as it takes.
func (cl *adminClient) download(ctx context.Context, path string, fn func(io.Reader, int64) error) error {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://qrauthd"+path, nil)
	if err != nil {
		return err
	}
	hc := &http.Client{Transport: cl.http.Transport}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach qrauthd on its admin socket (is it running with this -data?): %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errorAnswer("GET", path, resp)
	}
	if resp.ContentLength < 0 {
		return errors.New("the server did not announce the copy's length")
	}
	return fn(resp.Body, resp.ContentLength)
}

// runBackup runs `qrauthd backup [-data DB] [-force] FILE`: a copy of a
// stopped server's database, opened read-only. A running server holds the
// file: then `qrauthd admin backup` is the way.
func runBackup(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("qrauthd backup", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	data := fs.String("data", env("DATA", DefaultDataPath), "the stopped server's database file")
	force := fs.Bool("force", false, "replace FILE if it exists")
	usage := "Usage: qrauthd backup [-data DB] [-force] FILE\n\nCopies the database of a stopped server to FILE (checked, written whole or not at all).\n" +
		"While the server runs, use: qrauthd admin backup [-force] FILE\n"
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return 0
	} else if err != nil || fs.NArg() != 1 {
		if err == nil {
			err = errors.New("give one FILE")
		}
		fmt.Fprintf(stderr, "qrauthd backup: %v (qrauthd backup -h)\n", err)
		return 2
	}
	if _, err := os.Stat(*data); err != nil {
		fmt.Fprintf(stderr, "qrauthd backup: %v\n", err)
		return 1
	}
	db, err := store.Open(*data, store.Options{ReadOnly: true})
	if errors.Is(err, store.ErrLocked) {
		fmt.Fprintf(stderr, "qrauthd backup: %s is in use by a running server: use qrauthd admin backup FILE\n", *data)
		return 1
	} else if err != nil {
		fmt.Fprintf(stderr, "qrauthd backup: %v\n", err)
		return 1
	}
	defer db.Close()
	pr, pw := io.Pipe()
	go func() {
		_, err := db.Backup(context.Background(), pw, nil)
		pw.CloseWithError(err)
	}()
	version, n, err := writeBackup(fs.Arg(0), *force, pr, -1)
	pr.CloseWithError(err) // stop the copy if the writing side failed first
	if err != nil {
		fmt.Fprintf(stderr, "qrauthd backup: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %d bytes, schema version %d\n", fs.Arg(0), n, version)
	return 0
}
