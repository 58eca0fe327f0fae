package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/qrauth/qrauth/store"
	"github.com/qrauth/qrauth/store/postgres"
)

// adminMigrate runs `qrauthd admin migrate --from FILE.db --to postgres://…`:
// it copies a bbolt file into an empty PostgreSQL database, then compares
// the two. It works on files, not through the operator socket: the server
// must be stopped, or what it writes after the copy would be lost (and
// bbolt's file lock refuses a second opener anyway).
func adminMigrate(ctx context.Context, _ *adminClient, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	from := fs.String("from", "", "the stopped server's bbolt database file")
	to := fs.String("to", "", "an empty PostgreSQL database, postgres://USER:PASSWORD@HOST/DB")
	sample := fs.Int("sample", 1000, "how many users to compare record by record after the copy")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 || *from == "" || !isPostgresURL(*to) {
		return errUsage
	}
	src, err := store.Open(*from, store.Options{ReadOnly: true, LockTimeout: 2 * time.Second})
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("%s is in use: stop the server first, so that nothing it writes after the copy is lost", *from)
	} else if err != nil {
		return err
	}
	defer src.Close()
	dst, err := postgres.Open(ctx, *to, postgres.Options{})
	if err != nil {
		return err
	}
	defer dst.Close()
	start := time.Now()
	rep, err := dst.Import(ctx, src)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(rep))
	total := 0
	for n, c := range rep {
		names = append(names, n)
		total += c
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(out, "%-22s %d\n", n, rep[n])
	}
	fmt.Fprintf(out, "copied %d records in %s\n", total, time.Since(start).Round(time.Millisecond))
	if err := dst.Verify(ctx, src, *sample); err != nil {
		return fmt.Errorf("the copy differs from the file: %w", err)
	}
	fmt.Fprintf(out, "verified: the counts match, and the records of up to %d users are equal\n", *sample)
	fmt.Fprintf(out, "start qrauthd with -store %s\n", redactURL(*to))
	return nil
}
