package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/store"
	"github.com/qrauth/qrauth/wire"
	bolt "go.etcd.io/bbolt"
)

// TestAdminBackupUnderLoad takes an online backup while phones sign up and
// sign in over loopback, then proves the copy: it opens, `qrauthd check`
// passes, and it holds every account whose sign-up was acknowledged before
// the backup began, and the audit event of its own taking.
func TestAdminBackupUnderLoad(t *testing.T) {
	m := MustRunMain(t, "-app-rate", "1000", "-app-burst", "1000")
	origin := m.Server.Origin()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()

	// The load: workers each sign up one phone, then sign it in again and
	// again, until told to stop or out of rounds (bounded in count and, by
	// ctx, in time).
	const workers, rounds = 4, 6
	var (
		mu    sync.Mutex
		acked []qrauth.UserID // sign-ups the phone has been told of
		errs  []error
		wg    sync.WaitGroup
		stop  = make(chan struct{})
		ups   = make(chan struct{}, workers) // one per acknowledged sign-up
	)
	for w := range workers {
		wg.Go(func() {
			dev, err := appclient.Init(ctx, appclient.InitOptions{Server: origin, Phone: fmt.Sprintf("+41 79 200 00 %02d", w)})
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			for r := range rounds {
				select {
				case <-stop:
					return
				default:
				}
				var p *qrauth.Profile
				if r == 0 {
					p = &qrauth.Profile{Name: fmt.Sprintf("Worker %d", w)}
				}
				res, err := qrSignInFrame(ctx, origin, dev, p)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else if r == 0 && res.Result == wire.ResultSignedUp {
					acked = append(acked, res.UserID)
					ups <- struct{}{}
				} else if r == 0 || res.Result != wire.ResultSignedIn {
					errs = append(errs, fmt.Errorf("worker %d round %d: %+v", w, r, res))
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	// The backup starts once the load is under way: all workers but one
	// have signed up, and go on signing in while it runs.
	for range workers - 1 {
		select {
		case <-ups:
		case <-ctx.Done():
			t.Fatal("the load made no progress")
		}
	}
	mu.Lock()
	before := slices.Clone(acked)
	mu.Unlock()

	file := filepath.Join(t.TempDir(), "backup.db")
	admin := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := runAdmin(ctx, append([]string{"-data", m.DataPath}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	code, out, errOut := admin("backup", file)
	close(stop)
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	if code != 0 || !strings.Contains(out, "schema version 1") {
		t.Fatalf("admin backup: exit %d, %q %q", code, out, errOut)
	}
	t.Logf("%d accounts acknowledged before the backup, %d in all", len(before), len(acked))
	if len(before) == 0 {
		t.Fatal("no account was acknowledged before the backup")
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, %v; want mode 0600", fi, err)
	}

	// `qrauthd check FILE` passes and names the version.
	if code, out, errOut := runCLI(t, "check", file); code != 0 || !strings.Contains(out, "schema version 1") || !strings.Contains(out, "no problems") {
		t.Fatalf("check of the copy: exit %d, %q %q", code, out, errOut)
	}
	cp, err := store.Open(file, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range before {
		if _, err := cp.FindUserByID(ctx, id); err != nil {
			t.Errorf("%s, acknowledged before the backup, is not in it: %v", id, err)
		}
	}
	events, err := cp.ListAudit(ctx, qrauth.AuditFilter{})
	cp.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(events, func(e *qrauth.AuditEvent) bool {
		return e.Type == qrauth.AuditBackup && strings.Contains(e.Detail, "operator")
	}) {
		t.Error("the copy lacks the audit event of its taking")
	}

	// An existing FILE stays unless -force.
	old, _ := os.ReadFile(file)
	if code, _, errOut := admin("backup", file); code != 1 || !strings.Contains(errOut, "give -force") {
		t.Fatalf("backup over an existing file: exit %d, %q", code, errOut)
	}
	if now, _ := os.ReadFile(file); !bytes.Equal(old, now) {
		t.Fatal("a refused backup changed the file")
	}
	if code, _, errOut := admin("backup", "-force", file); code != 0 {
		t.Fatalf("backup -force: exit %d, %q", code, errOut)
	}
	if code, _, _ := admin("backup"); code != 2 {
		t.Fatalf("backup without FILE: exit %d, want 2", code)
	}

	// Over TCP nobody gets a copy, whatever the session.
	resp, err := http.Get(origin + wire.PathAdminBackup)
	if err != nil {
		t.Fatal(err)
	}
	var e qrauth.Error
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || e.Reason != "operator_only" {
		t.Fatalf("backup over TCP: %d %+v", resp.StatusCode, e)
	}

	// The offline command copies a stopped server's file (here: the
	// copy) and refuses the running server's.
	second := filepath.Join(t.TempDir(), "second.db")
	if code, out, errOut := runCLI(t, "backup", "-data", file, second); code != 0 || !strings.Contains(out, "schema version 1") {
		t.Fatalf("offline backup: exit %d, %q %q", code, out, errOut)
	}
	if code, _, _ := runCLI(t, "check", second); code != 0 {
		t.Fatal("the offline copy fails its check")
	}
	if code, _, errOut := runCLI(t, "backup", "-data", m.DataPath, filepath.Join(t.TempDir(), "x.db")); code != 1 ||
		!strings.Contains(errOut, "qrauthd admin backup") {
		t.Fatalf("offline backup of a running server: exit %d, %q", code, errOut)
	}
}

// TestNewerSchemaRefused: a file written by a newer qrauthd stops the
// start with a message that says so, and `qrauthd check` names its
// version; neither changes it.
func TestNewerSchemaRefused(t *testing.T) {
	path, _ := validDB(t, 2)
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	newer := store.SchemaVersion() + 1
	err = b.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("version"), binary.BigEndian.AppendUint64(nil, newer))
	})
	b.Close()
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	want := fmt.Sprintf("schema version %d, this qrauthd reads up to %d", newer, store.SchemaVersion())
	code, _, errOut := runCLI(t, "-addr", "127.0.0.1:0", "-data", path, "-admin-socket", "off", "-log-level", "error")
	if code != 1 || !strings.Contains(errOut, "newer qrauthd") || !strings.Contains(errOut, want) {
		t.Fatalf("start: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, "check", path); code != 1 || !strings.Contains(errOut, want) {
		t.Fatalf("check: exit %d, %q", code, errOut)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("the refusal changed the file")
	}
}

// TestAdminBackupRefusesBadCopies: a copy cut off in transit, or one that
// is not a database, never becomes FILE, and the old FILE stays.
func TestAdminBackupRefusesBadCopies(t *testing.T) {
	for name, c := range map[string]struct {
		announce int
		body     []byte
		want     string
	}{
		"CutOff":        {8192, bytes.Repeat([]byte{1}, 100), "unexpected EOF"},
		"NotADatabase":  {4096, bytes.Repeat([]byte{1}, 4096), "does not open"},
		"ErrorAnswered": {0, nil, "operator_only"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			socket := filepath.Join(dir, "admin.sock")
			ln, err := net.Listen("unix", socket)
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if c.body == nil {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusForbidden)
					json.NewEncoder(w).Encode(qrauth.Errorf(qrauth.EFORBIDDEN, "operator_only", "no"))
					return
				}
				w.Header().Set("Content-Length", strconv.Itoa(c.announce))
				w.Write(c.body)
			})}
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close() })

			for _, file := range []string{filepath.Join(dir, "new.db"), filepath.Join(dir, "old.db")} {
				var out, errOut bytes.Buffer
				args := []string{"-socket", socket, "backup", "-force", file}
				if strings.HasSuffix(file, "old.db") {
					os.WriteFile(file, []byte("the old copy"), 0o600)
				}
				if code := runAdmin(t.Context(), args, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), c.want) {
					t.Fatalf("%s: exit %d, %q; want 1 and %q", file, code, errOut.String(), c.want)
				}
				got, err := os.ReadFile(file)
				if strings.HasSuffix(file, "old.db") && string(got) != "the old copy" {
					t.Errorf("the old FILE became %q", got)
				} else if strings.HasSuffix(file, "new.db") && err == nil {
					t.Errorf("a bad copy was kept as FILE")
				}
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != 2 { // the socket and old.db
				t.Errorf("%d entries left in the directory, want the socket and old.db", len(ents))
			}
		})
	}
}
