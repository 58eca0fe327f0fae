package appclient

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/internal/atomicfile"
	"github.com/qrauth/qrauth/offline"
	"github.com/qrauth/qrauth/wire"
	"golang.org/x/crypto/argon2"
)

// Offline codes (docs/offline.md). While online, the phone activates an
// offline method with a device-signed call and receives the method's key
// once; it keeps the key in an OfflineKeys file beside the device state.
// Later, with no network, it reads a challenge QR code (verification data),
// shows its context, and derives the one-time code from the key and the
// whole verification data (offline.OTP).
//
// For OFFLINE_PIN the key is stored wrapped: XORed with a 32-byte key that
// Argon2id derives from the PIN and a random salt. Nothing on the phone can
// tell a right PIN from a wrong one: a wrong PIN yields another key and so a
// wrong code, which only the server notices, counting it as a failed
// attempt and locking the method after a few. Someone who copies the file
// therefore cannot try PINs offline without a code the phone really showed
// for a challenge they also saw. The PIN never leaves the phone and is
// independent of any other PIN.

// PINParams are the Argon2id parameters that derive the wrapping key of an
// OFFLINE_PIN key from the PIN.
type PINParams struct {
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
}

// DefaultPINParams are OWASP's recommended minimum for Argon2id (19 MiB,
// two passes): about 50 ms on a laptop, more on a phone.
var DefaultPINParams = PINParams{Time: 2, MemoryKiB: 19 * 1024, Threads: 1}

func (p PINParams) check() error {
	if p.Time < 1 || p.Time > 100 || p.MemoryKiB < 8*1024 || p.MemoryKiB > 4<<20 || p.Threads < 1 {
		return qrauth.Errorf(qrauth.EINVALID, "invalid_pin_params", "The PIN key derivation parameters are out of range.")
	}
	return nil
}

// OfflineKey is one activated offline method as the phone keeps it.
type OfflineKey struct {
	Origin   string          `json:"origin"`
	DeviceID qrauth.DeviceID `json:"device_id"`
	UserID   qrauth.UserID   `json:"user_id"`
	Method   offline.Method  `json:"method"`
	KeyID    string          `json:"key_id"`
	// Key is the method key of OFFLINE_DEVICE.
	Key []byte `json:"key,omitempty"`
	// WrappedKey, Salt and PIN are OFFLINE_PIN's: the key XORed with
	// Argon2id(PIN, Salt, PIN).
	WrappedKey  []byte     `json:"wrapped_key,omitempty"`
	Salt        []byte     `json:"salt,omitempty"`
	PIN         *PINParams `json:"pin,omitempty"`
	ActivatedAt time.Time  `json:"activated_at"`
}

// Hint returns the device hint verification data carries for this key.
func (k *OfflineKey) Hint() string { return offline.DeviceHint(k.DeviceID) }

func (k *OfflineKey) check() error {
	bad := qrauth.Errorf(qrauth.EINVALID, "offline_keys_corrupt", "An offline key of %s is damaged; activate the method again.", k.Method)
	if !offline.ValidMethod(k.Method) || !qrauth.ValidDeviceID(k.DeviceID) {
		return bad
	}
	switch k.Method {
	case offline.Device:
		if len(k.Key) != offline.KeySize || k.WrappedKey != nil {
			return bad
		}
	case offline.PIN:
		if k.Key != nil || len(k.WrappedKey) != offline.KeySize || len(k.Salt) < 16 || k.PIN == nil || k.PIN.check() != nil {
			return bad
		}
	}
	return nil
}

// MinPINLen and MaxPINLen bound the PIN of OFFLINE_PIN, which is digits
// only: a wrong PIN is not detectable on the phone, so the server's attempt
// limit, not the PIN's length, bounds guessing.
const (
	MinPINLen = 4
	MaxPINLen = 12
)

// CheckPIN checks the form of a PIN: 4 to 12 digits.
func CheckPIN(pin string) error {
	if len(pin) < MinPINLen || len(pin) > MaxPINLen || !offline.ValidOTP(pin, len(pin)) {
		return qrauth.Errorf(qrauth.EINVALID, "invalid_pin", "The PIN must be %d to %d digits.", MinPINLen, MaxPINLen)
	}
	return nil
}

// pinKey derives the 32-byte wrapping key of a PIN.
func pinKey(pin string, salt []byte, p PINParams) []byte {
	return argon2.IDKey([]byte(pin), salt, p.Time, p.MemoryKiB, p.Threads, offline.KeySize)
}

// methodKey returns the key of k, unwrapping it with pin for OFFLINE_PIN.
// A wrong PIN gives a wrong key, on purpose (see the package notes above).
func (k *OfflineKey) methodKey(pin string) ([]byte, error) {
	if err := k.check(); err != nil {
		return nil, err
	}
	if k.Method == offline.Device {
		return bytes.Clone(k.Key), nil
	}
	if err := CheckPIN(pin); err != nil {
		return nil, err
	}
	key := pinKey(pin, k.Salt, *k.PIN)
	subtle.XORBytes(key, key, k.WrappedKey)
	return key, nil
}

// OfflineKeys is the phone's store of offline method keys. Keep it in a
// file of mode 0600 (Save does); it is useless without the phone's own
// state but holds secrets.
type OfflineKeys struct {
	Keys []OfflineKey `json:"keys"`
}

// offlineKeysVersion is the version of the OfflineKeys file format.
const offlineKeysVersion = 1

type offlineKeysFile struct {
	Version int          `json:"version"`
	Keys    []OfflineKey `json:"keys"`
}

// OfflineKeysPath returns the file of the offline keys of the device state
// at statePath: device.json → device.offline.json.
func OfflineKeysPath(statePath string) string {
	return strings.TrimSuffix(statePath, filepath.Ext(statePath)) + ".offline.json"
}

// LoadOfflineKeys reads the keys written by Save. A missing file is an
// empty set; a file open to other users is refused with EUNAUTHORIZED
// "offline_keys_insecure".
func LoadOfflineKeys(path string) (*OfflineKeys, error) {
	data, err := atomicfile.ReadPrivate(path, maxResponseSize)
	var insecure *atomicfile.ModeError
	if errors.Is(err, fs.ErrNotExist) {
		return &OfflineKeys{}, nil
	} else if errors.As(err, &insecure) {
		return nil, qrauth.Errorf(qrauth.EUNAUTHORIZED, "offline_keys_insecure",
			"The offline keys %s have mode %04o, open to other users; run chmod 600 on the file.", path, insecure.Mode)
	} else if err != nil {
		return nil, wrapf(qrauth.EINTERNAL, "offline_keys_unreadable", err, "Cannot read the offline keys at %s.", path)
	}
	var file offlineKeysFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		return nil, wrapf(qrauth.EINVALID, "offline_keys_corrupt", err, "The offline keys at %s are damaged.", path)
	}
	if file.Version != offlineKeysVersion {
		return nil, qrauth.Errorf(qrauth.EINVALID, "offline_keys_version", "The offline keys at %s have version %d; this app reads version %d.",
			path, file.Version, offlineKeysVersion)
	}
	for i := range file.Keys {
		if err := file.Keys[i].check(); err != nil {
			return nil, err
		}
	}
	return &OfflineKeys{Keys: file.Keys}, nil
}

// Save writes the keys to path with mode 0600, atomically (see
// internal/atomicfile): a crash leaves the old keys or the new ones.
func (k *OfflineKeys) Save(path string) error {
	data, err := json.MarshalIndent(offlineKeysFile{Version: offlineKeysVersion, Keys: k.Keys}, "", "  ")
	if err != nil {
		return qrauth.Internal(err)
	}
	err = os.MkdirAll(filepath.Dir(path), 0o700)
	if err == nil {
		err = atomicfile.Write(path, append(data, '\n'), 0o600)
	}
	if err != nil {
		return wrapf(qrauth.EINTERNAL, "offline_keys_not_saved", err, "Cannot save the offline keys to %s.", path)
	}
	return nil
}

// Put adds key, replacing the key of the same device and method. (A
// device id is derived from the device's own key, so it names one device
// of one server.)
func (k *OfflineKeys) Put(key OfflineKey) {
	for i := range k.Keys {
		if k.Keys[i].DeviceID == key.DeviceID && k.Keys[i].Method == key.Method {
			k.Keys[i] = key
			return
		}
	}
	k.Keys = append(k.Keys, key)
}

// Remove drops the key of a device's method; it reports whether there was one.
func (k *OfflineKeys) Remove(id qrauth.DeviceID, m offline.Method) bool {
	for i := range k.Keys {
		if k.Keys[i].DeviceID == id && k.Keys[i].Method == m {
			k.Keys = append(k.Keys[:i], k.Keys[i+1:]...)
			return true
		}
	}
	return false
}

// ActivateOptions configure Device.ActivateOffline.
type ActivateOptions struct {
	// PIN is the new PIN of OFFLINE_PIN (4 to 12 digits); it must be
	// empty for OFFLINE_DEVICE.
	PIN string
	// PINParams default to DefaultPINParams.
	PINParams *PINParams
}

// ActivateOffline activates an offline method of the device over a
// device-signed call and returns the key to keep (in OfflineKeys). For
// OFFLINE_PIN the key is wrapped under the PIN before it is returned; the
// PIN is not sent. Activating again replaces the server's key: keep only
// the new one. A locked method cannot be activated again (ECONFLICT
// "method_locked") until an administrator unlocks it.
func (d *Device) ActivateOffline(ctx context.Context, m offline.Method, opts ActivateOptions) (*OfflineKey, error) {
	if !offline.ValidMethod(m) {
		return nil, qrauth.Errorf(qrauth.EINVALID, "invalid_method", "Unknown offline method %q.", m)
	}
	params := DefaultPINParams
	if opts.PINParams != nil {
		params = *opts.PINParams
	}
	switch {
	case m == offline.PIN:
		if err := CheckPIN(opts.PIN); err != nil {
			return nil, err
		}
		if err := params.check(); err != nil {
			return nil, err
		}
	case opts.PIN != "":
		return nil, qrauth.Errorf(qrauth.EINVALID, "pin_not_used", "OFFLINE_DEVICE takes no PIN; use OFFLINE_PIN for codes that need one.")
	}
	var act wire.OfflineActivation
	if err := d.signedJSON(ctx, http.MethodPost, wire.Path(wire.PathAppOfflineMethod, string(m)), nil, http.StatusOK, &act); err != nil {
		return nil, err
	}
	key, err := base64.RawURLEncoding.DecodeString(act.Key)
	if err != nil || len(key) != offline.KeySize || act.Method != m || act.DeviceID != d.ID() || !sameOrigin(act.Origin, d.Origin) {
		return nil, qrauth.Errorf(qrauth.EINTERNAL, "bad_response", "The server sent an activation this app cannot use.")
	}
	k := &OfflineKey{Origin: d.Origin, DeviceID: d.ID(), UserID: act.UserID, Method: m, KeyID: act.KeyID, ActivatedAt: act.ActivatedAt}
	if m == offline.Device {
		k.Key = key
		return k, nil
	}
	salt := make([]byte, 16)
	if _, err := io.ReadFull(d.rand(), salt); err != nil {
		return nil, wrapf(qrauth.EINTERNAL, "no_randomness", err, "Cannot wrap the key: no randomness.")
	}
	wrap := pinKey(opts.PIN, salt, params)
	subtle.XORBytes(wrap, wrap, key)
	clear(key)
	k.WrappedKey, k.Salt, k.PIN = wrap, salt, &params
	return k, nil
}

// DeactivateOffline turns an offline method of the device off on the
// server. Remove its key from OfflineKeys too.
func (d *Device) DeactivateOffline(ctx context.Context, m offline.Method) error {
	if !offline.ValidMethod(m) {
		return qrauth.Errorf(qrauth.EINVALID, "invalid_method", "Unknown offline method %q.", m)
	}
	return d.signedJSON(ctx, http.MethodDelete, wire.Path(wire.PathAppOfflineMethod, string(m)), nil, http.StatusNoContent, nil)
}

// OfflineMethods lists the device's offline methods as the server knows
// them: locked or not, attempts left.
func (d *Device) OfflineMethods(ctx context.Context) ([]wire.OfflineMethodInfo, error) {
	var out wire.OfflineMethodList
	if err := d.signedJSON(ctx, http.MethodGet, wire.PathAppOffline, nil, http.StatusOK, &out); err != nil {
		return nil, err
	}
	return out.Methods, nil
}

// OfflineChallenge is a scanned offline challenge with the key that
// answers it: show Context (and Method) to the person, ask for the PIN if
// NeedsPIN, then call Code. Nothing here touches the network.
type OfflineChallenge struct {
	Data    *offline.VerificationData
	Context string
	Method  offline.Method
	// NeedsPIN is true for OFFLINE_PIN.
	NeedsPIN bool

	text string
	key  *OfflineKey
}

// StartOffline decodes the text of an offline challenge QR code and finds
// the key that answers it among keys, by method and device hint. It never
// uses the network. EINVALID "not_offline_code" (or a context reason) for
// text that is not verification data; ENOTFOUND "no_offline_key" when no
// key of this phone matches (another phone's code, or a method not
// activated here).
func StartOffline(text string, keys *OfflineKeys) (*OfflineChallenge, error) {
	vd, err := offline.DecodeVerificationData(text)
	if err != nil {
		return nil, err
	}
	var found *OfflineKey
	if keys != nil {
		for i := range keys.Keys {
			k := &keys.Keys[i]
			if k.Method == vd.Method && k.Hint() == vd.Hint {
				found = k
				break
			}
		}
	}
	if found == nil {
		return nil, qrauth.Errorf(qrauth.ENOTFOUND, "no_offline_key",
			"This code is for another phone, or for %s, which is not turned on in this app. Turn it on while online, or check that the page asked for this phone.",
			vd.Method)
	}
	return &OfflineChallenge{Data: vd, Context: vd.Context, Method: vd.Method, NeedsPIN: vd.Method == offline.PIN, text: text, key: found}, nil
}

// Code derives the one-time code; pin is needed for OFFLINE_PIN and
// ignored otherwise. A wrong PIN gives a wrong code without any error: the
// phone cannot tell, only the server can.
func (ch *OfflineChallenge) Code(pin string) (string, error) {
	key, err := ch.key.methodKey(pin)
	if err != nil {
		return "", err
	}
	defer clear(key)
	return offline.OTP(key, ch.text, ch.Data.Digits), nil
}

// OfflineCode is StartOffline and Code in one call, for scripts.
func OfflineCode(text string, keys *OfflineKeys, pin string) (code string, ch *OfflineChallenge, err error) {
	if ch, err = StartOffline(text, keys); err != nil {
		return "", nil, err
	}
	code, err = ch.Code(pin)
	return code, ch, err
}

// Transaction is an online transaction the phone fetched after scanning
// its code: show Text, then call Approve or Deny.
type Transaction struct {
	Info   wire.TransactionInfo
	device *Device
	token  string
}

// IsTransactionURL reports whether s looks like a transaction code
// (ORIGIN/t/TOKEN) rather than a login code; ParseTransactionURL checks it.
func IsTransactionURL(s string) bool {
	u, err := url.Parse(strings.TrimSpace(s))
	return err == nil && strings.HasPrefix(u.Path, wire.Prefix(wire.PathTransactionScan))
}

// ParseTransactionURL checks that s is a transaction code of the server at
// origin, ORIGIN/t/TOKEN, and returns the token. A code of another origin
// is EINVALID "foreign_origin", anything else "not_a_transaction_code".
func ParseTransactionURL(origin, s string) (string, error) {
	return parseCodeURL(origin, s, wire.Prefix(wire.PathTransactionScan),
		qrauth.Errorf(qrauth.EINVALID, "not_a_transaction_code", "This QR code is not a qrauth transaction code."))
}

// FetchTransaction fetches the transaction of a scanned code with a
// device-signed call (which also tells the relying site it was scanned),
// and checks that the text is the one whose hash the phone will sign.
func (d *Device) FetchTransaction(ctx context.Context, code string) (*Transaction, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	tok, err := ParseTransactionURL(d.Origin, code)
	if err != nil {
		return nil, err
	}
	var info wire.TransactionInfo
	if err := d.signedJSON(ctx, http.MethodGet, wire.Path(wire.PathAppApproval, tok), nil, http.StatusOK, &info); err != nil {
		return nil, err
	}
	if !sameOrigin(info.Origin, d.Origin) || info.TextSHA256 != wire.TextSHA256(info.Text) || info.ID == "" ||
		strings.Contains(info.ID, "\n") || offline.CheckApprovalText(info.Text) != nil {
		return nil, qrauth.Errorf(qrauth.EINTERNAL, "bad_response", "The server sent a transaction this app cannot show.")
	}
	return &Transaction{Info: info, device: d, token: tok}, nil
}

// Approve signs approval of the transaction's text and sends it.
func (t *Transaction) Approve(ctx context.Context) (offline.ApprovalState, error) {
	return t.decide(ctx, wire.DecisionApprove)
}

// Deny signs the refusal and sends it.
func (t *Transaction) Deny(ctx context.Context) (offline.ApprovalState, error) {
	return t.decide(ctx, wire.DecisionDeny)
}

func (t *Transaction) decide(ctx context.Context, decision string) (offline.ApprovalState, error) {
	d := wire.TransactionDecision{Origin: t.device.Origin, TransactionID: t.Info.ID, TextSHA256: wire.TextSHA256(t.Info.Text),
		DeviceID: t.device.ID(), Decision: decision}
	body := wire.TransactionDecisionRequest{Decision: decision, Signature: d.Sign(t.device.PrivateKey)}
	var out wire.TransactionDecisionResponse
	if err := t.device.signedJSON(ctx, http.MethodPost, wire.Path(wire.PathAppApproval, t.token), body, http.StatusOK, &out); err != nil {
		return "", err
	}
	return out.Status, nil
}

// signedJSON makes a device-signed request (wire.AppRequest) with an
// optional JSON body and decodes a JSON answer into out (unless nil). Only
// the method, path, time, nonce and device are signed; the calls that
// carry a body that matters sign it themselves (TransactionDecision).
func (d *Device) signedJSON(ctx context.Context, method, path string, body any, want int, out any) error {
	return d.signedRequest(ctx, method, path, body, want, false, out)
}

// signedRequest is signedJSON and do: with okToo, a 200 answer is accepted
// besides want.
func (d *Device) signedRequest(ctx context.Context, method, path string, body any, want int, okToo bool, out any) error {
	if err := d.check(); err != nil {
		return err
	}
	nonce, err := qrauth.RandomToken(d.rand(), 16)
	if err != nil {
		return wrapf(qrauth.EINTERNAL, "no_randomness", err, "Cannot sign the request: no randomness.")
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return qrauth.Internal(err)
		}
		rd = bytes.NewReader(b)
	}
	origin, _ := normalizeOrigin(d.Origin)
	req, err := http.NewRequestWithContext(ctx, method, origin+path, rd)
	if err != nil {
		return qrauth.Internal(err)
	}
	r := wire.AppRequest{Method: method, Path: path, Time: d.now().Unix(), Nonce: nonce, DeviceID: d.ID()}
	req.Header.Set(wire.HeaderDevice, string(r.DeviceID))
	req.Header.Set(wire.HeaderTime, strconv.FormatInt(r.Time, 10))
	req.Header.Set(wire.HeaderNonce, r.Nonce)
	req.Header.Set(wire.HeaderSignature, r.Sign(d.PrivateKey))
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.httpClient().Do(req)
	if err != nil {
		return transportError(ctx, origin, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want && !(okToo && resp.StatusCode == http.StatusOK) {
		return responseError(resp)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseSize)).Decode(out); err != nil {
		return wrapf(qrauth.EINTERNAL, "bad_response", err, "The server sent an answer this app cannot read.")
	}
	return nil
}
