package appclient_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
)

func TestInit(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		s := newFakeServer(t, func(*appConn) {})
		d, err := appclient.Init(context.Background(), appclient.InitOptions{
			Server: s.URL + "/", Phone: "0041 79 123 45 67", Name: " Pixel 8 ",
		})
		if err != nil {
			t.Fatal(err)
		}
		if want := qrauth.PhoneIDHash(testSalt, "+41791234567"); d.PhoneIDHash != want {
			t.Fatalf("PhoneIDHash = %s, want %s", d.PhoneIDHash, want)
		}
		if d.Server != s.URL || d.Origin != s.URL || d.Name != "Pixel 8" {
			t.Fatalf("device = %+v", d)
		}
		if !qrauth.ValidDeviceID(d.ID()) || d.ID() != qrauth.DeviceIDFromKey(d.PublicKey()) {
			t.Fatalf("ID = %s", d.ID())
		}
	})

	t.Run("DefaultName", func(t *testing.T) {
		s := newFakeServer(t, func(*appConn) {})
		d, err := appclient.Init(context.Background(), appclient.InitOptions{Server: s.URL, Phone: "+41791234567"})
		if err != nil || d.Name != "Phone" {
			t.Fatalf("Init = %+v, %v", d, err)
		}
	})

	t.Run("ErrPhone", func(t *testing.T) {
		s := newFakeServer(t, func(*appConn) {})
		_, err := appclient.Init(context.Background(), appclient.InitOptions{Server: s.URL, Phone: "079 123 45 67"})
		wantError(t, err, qrauth.EINVALID, "invalid_phone")
	})

	t.Run("ErrServerURL", func(t *testing.T) {
		_, err := appclient.Init(context.Background(), appclient.InitOptions{Server: "login.example.com", Phone: "+41791234567"})
		wantError(t, err, qrauth.EINVALID, "invalid_server")
	})

	t.Run("ErrNotAQrauthServer", func(t *testing.T) {
		s := httptest.NewServer(http.NotFoundHandler())
		defer s.Close()
		_, err := appclient.Init(context.Background(), appclient.InitOptions{Server: s.URL, Phone: "+41791234567"})
		wantError(t, err, qrauth.ENOTFOUND, "not_a_qrauth_server")
	})

	t.Run("ErrProtocolVersion", func(t *testing.T) {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"protocol_version":99,"origin":"http://x","phone_salt":"AAAA","app_socket":"ws://x/ws/app"}`))
		}))
		defer s.Close()
		_, err := appclient.Init(context.Background(), appclient.InitOptions{Server: s.URL, Phone: "+41791234567"})
		wantError(t, err, qrauth.EINVALID, "unsupported_protocol")
	})

	t.Run("ErrUnreachable", func(t *testing.T) {
		s := httptest.NewServer(http.NotFoundHandler())
		s.Close()
		_, err := appclient.Init(context.Background(), appclient.InitOptions{Server: s.URL, Phone: "+41791234567"})
		wantError(t, err, qrauth.EINTERNAL, "server_unreachable")
	})
}

// testDevice returns a device with a fixed key, no server needed.
func testDevice() *appclient.Device {
	return &appclient.Device{
		Server:      "https://login.example.com",
		Origin:      "https://login.example.com",
		PhoneIDHash: qrauth.PhoneIDHash(testSalt, "+41791234567"),
		Name:        "Pixel 8",
		PrivateKey:  ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize)),
	}
}

func TestSaveLoad(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "new", "qrauth", "device.json")
		d := testDevice()
		if err := d.Save(path); err != nil {
			t.Fatal(err)
		}
		if runtime.GOOS != "windows" {
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("state file mode = %v, %v; want 0600", fi.Mode(), err)
			}
			if fi, err := os.Stat(filepath.Dir(path)); err != nil || fi.Mode().Perm() != 0o700 {
				t.Fatalf("state dir mode = %v, %v; want 0700", fi.Mode(), err)
			}
		}
		got, err := appclient.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if got.Server != d.Server || got.Origin != d.Origin || got.PhoneIDHash != d.PhoneIDHash ||
			got.Name != d.Name || !got.PrivateKey.Equal(d.PrivateKey) || got.ID() != d.ID() {
			t.Fatalf("Load = %+v, want %+v", got, d)
		}
	})

	t.Run("Overwrite", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "device.json")
		d := testDevice()
		if err := d.Save(path); err != nil {
			t.Fatal(err)
		}
		d.Name = "Renamed"
		if err := d.Save(path); err != nil {
			t.Fatal(err)
		}
		if got, err := appclient.Load(path); err != nil || got.Name != "Renamed" {
			t.Fatalf("Load = %+v, %v", got, err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Fatalf("directory holds %d files, want only the state file", len(ents))
		}
	})

	t.Run("ErrInsecureMode", func(t *testing.T) {
		if runtime.GOOS == "windows" {
			t.Skip("no Unix permissions")
		}
		path := filepath.Join(t.TempDir(), "device.json")
		if err := testDevice().Save(path); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := appclient.Load(path)
		wantError(t, err, qrauth.EUNAUTHORIZED, "state_file_insecure")
	})

	t.Run("ErrMissing", func(t *testing.T) {
		_, err := appclient.Load(filepath.Join(t.TempDir(), "device.json"))
		wantError(t, err, qrauth.ENOTFOUND, "no_state_file")
	})

	t.Run("ErrCorrupt", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "device.json")
		if err := os.WriteFile(path, []byte(`{"version":1,`), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := appclient.Load(path)
		wantError(t, err, qrauth.EINVALID, "state_corrupt")
	})

	t.Run("ErrSwappedKey", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "device.json")
		if err := testDevice().Save(path); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(path)
		var m map[string]any
		json.Unmarshal(data, &m)
		m["device_id"] = "d_AAAAAAAAAAAAAAAAAAAAAA"
		data, _ = json.Marshal(m)
		os.WriteFile(path, data, 0o600)
		_, err := appclient.Load(path)
		wantError(t, err, qrauth.EINVALID, "state_corrupt")
	})

	t.Run("ErrInvalidDevice", func(t *testing.T) {
		d := testDevice()
		d.PrivateKey = nil
		err := d.Save(filepath.Join(t.TempDir(), "device.json"))
		wantError(t, err, qrauth.EINVALID, "invalid_device")
	})
}
