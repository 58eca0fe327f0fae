package appclient

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/internal/atomicfile"
)

// Device is the phone's side of an account: the server it belongs to, its
// PhoneIdHash and its Ed25519 device key. The private key never leaves the
// phone; the server learns the public key at sign-up or when the phone is
// linked. The phone number itself is not kept, only its hash.
//
// Server, Origin, PhoneIDHash, Name and PrivateKey are the persistent state
// (see Save and Load). The other fields are run-time settings where the zero
// value means the default.
type Device struct {
	// Server is the URL the person configured, used to fetch discovery.
	Server string
	// Origin is the server's public origin from discovery. QR codes and
	// challenges for any other origin are refused.
	Origin string
	// PhoneIDHash is qrauth.PhoneIDHash of the phone number under the
	// server's salt.
	PhoneIDHash string
	// Name is sent as the device name at sign-up and link ("Phone" if empty).
	Name string
	// PrivateKey is the device key.
	PrivateKey ed25519.PrivateKey

	// HTTPClient makes discovery and session calls; nil means a client
	// with a 30 s timeout.
	HTTPClient *http.Client
	// Rand is the source of request nonces; nil means crypto/rand.
	Rand io.Reader
	// Now is the clock for signed requests; nil means time.Now.
	Now func() time.Time
}

// ID returns the device id, derived from the public key.
func (d *Device) ID() qrauth.DeviceID { return qrauth.DeviceIDFromKey(d.PublicKey()) }

// PublicKey returns the public half of the device key.
func (d *Device) PublicKey() ed25519.PublicKey {
	return d.PrivateKey.Public().(ed25519.PublicKey)
}

func (d *Device) httpClient() *http.Client {
	if d.HTTPClient != nil {
		return d.HTTPClient
	}
	return defaultHTTPClient
}

func (d *Device) rand() io.Reader {
	if d.Rand != nil {
		return d.Rand
	}
	return rand.Reader
}

func (d *Device) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// check validates the persistent fields, so that a hand-built or damaged
// Device fails with a clear error instead of a panic or a confusing
// refusal from the server.
func (d *Device) check() error {
	bad := func(what string) error {
		return qrauth.Errorf(qrauth.EINVALID, "invalid_device", "The device state has an invalid %s; run init again.", what)
	}
	if len(d.PrivateKey) != ed25519.PrivateKeySize ||
		!bytes.Equal(ed25519.NewKeyFromSeed(d.PrivateKey.Seed()), d.PrivateKey) {
		return bad("private key")
	}
	if _, err := normalizeServer(d.Server); err != nil {
		return bad("server")
	}
	if _, ok := normalizeOrigin(d.Origin); !ok {
		return bad("origin")
	}
	if !qrauth.ValidPhoneIDHash(d.PhoneIDHash) {
		return bad("phone id hash")
	}
	if _, err := qrauth.NormalizeDeviceName(d.Name); err != nil {
		return err
	}
	return nil
}

// InitOptions configure Init. Server and Phone are required.
type InitOptions struct {
	// Server is the URL of the qrauth server, such as https://login.example.com.
	Server string
	// Phone is the phone number in international form (+41 79 123 45 67).
	Phone string
	// Name names this device in the account's device list; "" means "Phone".
	Name string
	// HTTPClient fetches discovery and becomes Device.HTTPClient; nil means
	// a client with a 30 s timeout.
	HTTPClient *http.Client
	// Rand is the source of the device key; nil means crypto/rand.
	Rand io.Reader
}

// Init creates a new device for the server: it fetches the server's
// discovery document for the origin and the phone salt, normalizes the phone
// number, hashes it, and creates a fresh Ed25519 key. Nothing is sent to the
// server beyond the discovery request; the device registers itself by
// scanning a sign-up or link code. Save the result before using it.
func Init(ctx context.Context, opts InitOptions) (*Device, error) {
	server, err := normalizeServer(opts.Server)
	if err != nil {
		return nil, err
	}
	phone, err := qrauth.NormalizePhone(opts.Phone)
	if err != nil {
		return nil, err
	}
	name, err := qrauth.NormalizeDeviceName(opts.Name)
	if err != nil {
		return nil, err
	}
	disc, err := Discover(ctx, opts.HTTPClient, server)
	if err != nil {
		return nil, err
	}
	salt, _ := base64.RawURLEncoding.DecodeString(disc.PhoneSalt) // checked by Discover
	r := opts.Rand
	if r == nil {
		r = rand.Reader
	}
	_, priv, err := ed25519.GenerateKey(r)
	if err != nil {
		return nil, wrapf(qrauth.EINTERNAL, "no_randomness", err, "Cannot create a device key: no randomness.")
	}
	return &Device{
		Server:      server,
		Origin:      disc.Origin,
		PhoneIDHash: qrauth.PhoneIDHash(salt, phone),
		Name:        name,
		PrivateKey:  priv,
		HTTPClient:  opts.HTTPClient,
	}, nil
}

// stateVersion is the version of the state file format.
const stateVersion = 1

// stateFile is the JSON form of a Device on disk. The key is stored as its
// 32-byte seed; DeviceID is redundant and checked on load, so that a file
// whose key was swapped is noticed.
type stateFile struct {
	Version     int             `json:"version"`
	Server      string          `json:"server"`
	Origin      string          `json:"origin"`
	PhoneIDHash string          `json:"phone_id_hash"`
	Name        string          `json:"name"`
	DeviceID    qrauth.DeviceID `json:"device_id"`
	Seed        string          `json:"private_key_seed"` // base64url, 32 bytes
}

// Save writes the device state to path with mode 0600, creating the
// directory with mode 0700 if needed. It writes a temporary file in the same
// directory and renames it over path, so a crash leaves either the old or
// the new state, never a torn file.
func (d *Device) Save(path string) error {
	if err := d.check(); err != nil {
		return err
	}
	data, err := json.MarshalIndent(stateFile{
		Version:     stateVersion,
		Server:      d.Server,
		Origin:      d.Origin,
		PhoneIDHash: d.PhoneIDHash,
		Name:        d.Name,
		DeviceID:    d.ID(),
		Seed:        base64.RawURLEncoding.EncodeToString(d.PrivateKey.Seed()),
	}, "", "  ")
	if err != nil {
		return qrauth.Internal(err)
	}
	data = append(data, '\n')
	fail := func(err error) error {
		return wrapf(qrauth.EINTERNAL, "state_not_saved", err, "Cannot save the device state to %s.", path)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail(err)
	}
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return fail(err)
	}
	return nil
}

// Load reads a device state written by Save. It refuses a file that group
// or others may read or write (the key would be exposed), with EUNAUTHORIZED
// "state_file_insecure", and a missing file with ENOTFOUND "no_state_file".
func Load(path string) (*Device, error) {
	data, err := atomicfile.ReadPrivate(path, maxResponseSize)
	var insecure *atomicfile.ModeError
	if errors.Is(err, fs.ErrNotExist) {
		return nil, wrapf(qrauth.ENOTFOUND, "no_state_file", err, "No device state at %s; run init first.", path)
	} else if errors.As(err, &insecure) {
		return nil, qrauth.Errorf(qrauth.EUNAUTHORIZED, "state_file_insecure",
			"The device state %s holds a private key but has mode %04o, open to other users; run chmod 600 on it.",
			path, insecure.Mode)
	} else if err != nil {
		return nil, wrapf(qrauth.EINTERNAL, "state_unreadable", err, "Cannot read the device state at %s.", path)
	}
	var s stateFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, wrapf(qrauth.EINVALID, "state_corrupt", err, "The device state at %s is damaged.", path)
	}
	if s.Version != stateVersion {
		return nil, qrauth.Errorf(qrauth.EINVALID, "state_version", "The device state at %s has version %d; this app reads version %d.", path, s.Version, stateVersion)
	}
	seed, err := base64.RawURLEncoding.DecodeString(s.Seed)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, qrauth.Errorf(qrauth.EINVALID, "state_corrupt", "The device state at %s has a damaged key.", path)
	}
	d := &Device{
		Server:      s.Server,
		Origin:      s.Origin,
		PhoneIDHash: s.PhoneIDHash,
		Name:        s.Name,
		PrivateKey:  ed25519.NewKeyFromSeed(seed),
	}
	if d.ID() != s.DeviceID {
		return nil, qrauth.Errorf(qrauth.EINVALID, "state_corrupt", "The device state at %s has a key that does not match its device id.", path)
	}
	if err := d.check(); err != nil {
		return nil, err
	}
	return d, nil
}
