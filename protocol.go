package qrauth

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"time"
)

// ProtocolVersion is the version of the wire protocol in docs/protocol.md.
// Version 2 signs the join (see Join): the phone proves it holds the
// device key before the server reveals anything about the account.
const ProtocolVersion = 2

// MaxFrameSize is the largest WebSocket message either socket accepts, in
// bytes. Larger frames close the connection with 1009 (message too big).
const MaxFrameSize = 4096

// Room modes.
const (
	ModeLogin  = "login"  // a known device signs a browser in
	ModeSignUp = "signup" // an unknown phone creates an account
	ModeLink   = "link"   // a signed-in browser adds a new device
)

// Decisions.
const (
	DecisionApprove = "approve"
	DecisionDeny    = "deny"
)

// Results of a done message to the app.
const (
	ResultSignedIn = "signed_in"
	ResultSignedUp = "signed_up"
	ResultLinked   = "linked"
	ResultDenied   = "denied"
)

// Message types, server to browser.
const (
	MsgQR        = "qr"        // waiting: a (new) QR code to show
	MsgScanned   = "scanned"   // a phone joined; confirm on the phone
	MsgSignUp    = "signup"    // show the sign-up form
	MsgApproved  = "approved"  // carries the ticket
	MsgLinked    = "linked"    // a new device was added
	MsgDenied    = "denied"    // the phone declined
	MsgExpired   = "expired"   // the room's lifetime ended
	MsgError     = "error"     // see code/reason/message
	MsgReconnect = "reconnect" // the server is going away; open a new socket
)

// Message types, browser or app to server, and server to app.
const (
	MsgProfile   = "profile"   // browser or app: sign-up form data
	MsgJoin      = "join"      // app: join a room by PSK
	MsgDecision  = "decision"  // app: signed approve/deny
	MsgChallenge = "challenge" // server to app: nonce and browser context
	MsgNeedsForm = "profile_needed"
	MsgDone      = "done" // server to app: the outcome
)

// ServerMessage is every message the server sends on either socket. Fields
// not used by a type are omitted.
type ServerMessage struct {
	Type string `json:"type"`

	// qr
	Mode          string `json:"mode,omitempty"`
	QR            string `json:"qr,omitempty"`  // data:image/png;base64,...
	URL           string `json:"url,omitempty"` // what the QR code encodes
	ExpiresIn     int    `json:"expires_in,omitempty"`
	RoomExpiresIn int    `json:"room_expires_in,omitempty"`

	// approved
	Ticket string `json:"ticket,omitempty"`

	// linked, done
	Device *DeviceInfo `json:"device,omitempty"`

	// challenge
	Room         string          `json:"room,omitempty"`
	Nonce        string          `json:"nonce,omitempty"`
	Origin       string          `json:"origin,omitempty"`
	Context      *BrowserContext `json:"context,omitempty"`
	Proximity    *Proximity      `json:"proximity,omitempty"`
	KnownAddress *bool           `json:"known_address,omitempty"`
	Account      *AccountInfo    `json:"account,omitempty"`

	// done
	Result string `json:"result,omitempty"`
	UserID UserID `json:"user_id,omitempty"`

	// error
	Code    string `json:"code,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// ErrorMessageFor builds the error message for err.
func ErrorMessageFor(err error) *ServerMessage {
	return &ServerMessage{Type: MsgError, Code: ErrorCode(err), Reason: ErrorReason(err), Message: ErrorMessage(err)}
}

// DeviceInfo is what a browser or app learns about a device.
type DeviceInfo struct {
	ID   DeviceID `json:"id"`
	Name string   `json:"name"`
}

// AccountInfo is what the phone learns about the account it signs in to.
type AccountInfo struct {
	Name string `json:"name"`
}

// BrowserContext describes the browser that asks to be signed in, shown on
// the phone so the person can tell whether it is theirs.
type BrowserContext struct {
	IP        string    `json:"ip"`
	Place     string    `json:"place"` // approximate, "" when unknown
	Browser   string    `json:"browser"`
	OS        string    `json:"os"`
	UserAgent string    `json:"user_agent"`
	Origin    string    `json:"origin"`
	Time      time.Time `json:"time"`
}

// Proximity compares the network addresses of browser and phone.
type Proximity struct {
	SameNetwork bool   `json:"same_network"`
	AppIP       string `json:"app_ip"`
	Warning     string `json:"warning,omitempty"`
}

// BrowserFrame is a message from the browser.
type BrowserFrame struct {
	Type  string `json:"type"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

// AppFrame is a message from the app.
type AppFrame struct {
	Type string `json:"type"`

	// join (and Signature, PublicKey: both required in a join)
	PSK         string   `json:"psk,omitempty"`
	DeviceID    DeviceID `json:"device_id,omitempty"`
	PhoneIDHash string   `json:"phone_id_hash,omitempty"`

	// decision
	Decision   string   `json:"decision,omitempty"`
	Signature  string   `json:"signature,omitempty"`  // base64url, 64 bytes; join: of Join, decision: of Decision
	PublicKey  string   `json:"public_key,omitempty"` // base64url, 32 bytes; join: required; decision: optional
	DeviceName string   `json:"device_name,omitempty"`
	Profile    *Profile `json:"profile,omitempty"` // signup: fill the form from the phone

	// profile
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

var errMalformed = Errorf(EINVALID, "malformed_frame", "The message is not valid JSON of a known shape.")

func decodeStrict(data []byte, v any) error {
	if len(data) > MaxFrameSize {
		return Errorf(EINVALID, "frame_too_large", "The message is larger than %d bytes.", MaxFrameSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errMalformed
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errMalformed
	}
	return nil
}

// DecodeBrowserFrame parses and validates a browser message.
func DecodeBrowserFrame(data []byte) (*BrowserFrame, error) {
	var f BrowserFrame
	if err := decodeStrict(data, &f); err != nil {
		return nil, err
	}
	switch f.Type {
	case MsgProfile:
		p := Profile{Name: f.Name, Email: f.Email}
		if err := p.Normalize(); err != nil {
			return nil, err
		}
		f.Name, f.Email = p.Name, p.Email
	default:
		return nil, Errorf(EINVALID, "unknown_type", "Unknown message type.")
	}
	return &f, nil
}

// DecodeAppFrame parses and validates an app message: known type, fields of
// the right form and length. Whether the values are right (a known PSK, a
// valid signature) is for the server to decide.
func DecodeAppFrame(data []byte) (*AppFrame, error) {
	var f AppFrame
	if err := decodeStrict(data, &f); err != nil {
		return nil, err
	}
	switch f.Type {
	case MsgJoin:
		if !ValidToken(f.PSK, 16, 64) {
			return nil, Errorf(EINVALID, "invalid_psk", "The code is not a qrauth code.")
		}
		if f.DeviceID == "" {
			return nil, Errorf(EINVALID, "device_id_required", "The join message must carry the device id.")
		}
		if !ValidDeviceID(f.DeviceID) {
			return nil, Errorf(EINVALID, "invalid_device_id", "The device id is malformed.")
		}
		if !ValidPhoneIDHash(f.PhoneIDHash) {
			return nil, Errorf(EINVALID, "invalid_phone_id_hash", "The phone id hash must be 64 lowercase hex digits.")
		}
		// Protocol 2: the join proves possession of the device key, so
		// that nothing about the account is sent to a party that only
		// knows a device id and a phone number.
		if f.Signature == "" || f.PublicKey == "" {
			return nil, Errorf(EINVALID, "join_not_signed",
				"The join must carry the device's public key and signature (protocol version %d); update the app.", ProtocolVersion)
		}
		if err := checkSignatureField(f.Signature); err != nil {
			return nil, err
		}
		pub, err := decodePublicKeyField(f.PublicKey)
		if err != nil {
			return nil, err
		}
		if DeviceIDFromKey(pub) != f.DeviceID {
			return nil, errDeviceIDMismatch
		}
	case MsgDecision:
		if f.Decision != DecisionApprove && f.Decision != DecisionDeny {
			return nil, Errorf(EINVALID, "invalid_decision", "The decision must be approve or deny.")
		}
		if f.Signature != "" {
			if err := checkSignatureField(f.Signature); err != nil {
				return nil, err
			}
		}
		if f.PublicKey != "" {
			if _, err := decodePublicKeyField(f.PublicKey); err != nil {
				return nil, err
			}
		}
		name, err := NormalizeDeviceName(f.DeviceName)
		if err != nil {
			return nil, err
		}
		f.DeviceName = name
		if f.Profile != nil {
			if err := f.Profile.Normalize(); err != nil {
				return nil, err
			}
		}
	case MsgProfile:
		p := Profile{Name: f.Name, Email: f.Email}
		if err := p.Normalize(); err != nil {
			return nil, err
		}
		f.Name, f.Email = p.Name, p.Email
	default:
		return nil, Errorf(EINVALID, "unknown_type", "Unknown message type.")
	}
	return &f, nil
}

var errDeviceIDMismatch = Errorf(EINVALID, "device_id_mismatch", "The public key does not match the device id.")

// checkSignatureField checks the form of a signature field: 64 bytes,
// base64url without padding.
func checkSignatureField(sig string) error {
	if b, err := base64.RawURLEncoding.DecodeString(sig); err != nil || len(b) != ed25519.SignatureSize || !ValidToken(sig, 86, 86) {
		return Errorf(EINVALID, "invalid_signature_encoding", "The signature must be %d bytes, base64url without padding.", ed25519.SignatureSize)
	}
	return nil
}

// decodePublicKeyField decodes a public key field: 32 bytes, base64url
// without padding, and a key CheckPublicKey accepts (weak_public_key).
func decodePublicKeyField(key string) (ed25519.PublicKey, error) {
	b, err := base64.RawURLEncoding.DecodeString(key)
	if err != nil || len(b) != ed25519.PublicKeySize || !ValidToken(key, 43, 43) {
		return nil, Errorf(EINVALID, "invalid_public_key", "The public key must be %d bytes, base64url without padding.", ed25519.PublicKeySize)
	}
	if err := CheckPublicKey(b); err != nil {
		return nil, err
	}
	return b, nil
}

// ValidDeviceID reports whether id has the form DeviceIDFromKey produces.
func ValidDeviceID(id DeviceID) bool {
	s := string(id)
	return strings.HasPrefix(s, "d_") && ValidToken(s[2:], 22, 22)
}

// ValidPhoneIDHash reports whether h is 64 lowercase hex digits.
func ValidPhoneIDHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// ValidToken reports whether s is base64url without padding, of a length
// in [min, max]: the form of every PSK, nonce, ticket and token.
func ValidToken(s string, min, max int) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Decision is what the phone signs. Its canonical bytes (SignedBytes) are
// domain-separated so that a signature made for qrauth decisions cannot be
// replayed as anything else, and bind the origin, the room, the one-time
// nonce, the mode, the device, the phone and the decision.
type Decision struct {
	Origin      string
	Room        string
	Nonce       string
	Mode        string
	DeviceID    DeviceID
	PhoneIDHash string
	Decision    string
}

// SignedBytes returns the exact bytes the device signs: a header line and
// one "key=value" line per field, each ending in "\n". No field may contain
// a newline; the server only signs values it validated.
func (d *Decision) SignedBytes() []byte {
	return signedLines("qrauth-v1 decision", [][2]string{
		{"origin", d.Origin},
		{"room", d.Room},
		{"nonce", d.Nonce},
		{"mode", d.Mode},
		{"device", string(d.DeviceID)},
		{"phone", d.PhoneIDHash},
		{"decision", d.Decision},
	})
}

// signedLines returns the signed-bytes format shared by Decision,
// AppRequest and TransactionDecision: the header line, then one
// "key=value" line per field, each ending in "\n".
func signedLines(header string, fields [][2]string) []byte {
	var b bytes.Buffer
	b.WriteString(header)
	b.WriteByte('\n')
	for _, kv := range fields {
		b.WriteString(kv[0])
		b.WriteByte('=')
		b.WriteString(kv[1])
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Verify checks sig (base64url) against pub. It returns EUNAUTHORIZED
// "bad_signature" when the signature does not verify.
func (d *Decision) Verify(pub ed25519.PublicKey, sig string) error {
	s, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || len(s) != ed25519.SignatureSize || len(pub) != ed25519.PublicKeySize {
		return Errorf(EUNAUTHORIZED, "bad_signature", "The phone's signature is not valid.")
	}
	if strings.ContainsAny(d.Origin+d.Room+d.Nonce+d.Mode+string(d.DeviceID)+d.PhoneIDHash+d.Decision, "\n") ||
		!verifyEd25519(pub, d.SignedBytes(), s) {
		return Errorf(EUNAUTHORIZED, "bad_signature", "The phone's signature is not valid.")
	}
	return nil
}

// Sign signs d with priv and returns the base64url signature.
func (d *Decision) Sign(priv ed25519.PrivateKey) string {
	return base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, d.SignedBytes()))
}

// Join is what the app signs to join a room (protocol version 2). Its
// canonical bytes (SignedBytes) bind the server's origin, the scanned PSK
// (by its SHA-256 only, so the signed bytes reveal nothing that would let
// anyone join), the device and the phone. The server verifies the
// signature, with the key carried in the join, before it looks anything
// up: whoever gets the challenge holds the device key, and a party that
// only knows a device id and a phone number learns nothing about the
// account. The PSK is single-use, so a join cannot be replayed into
// another room, and the origin keeps it from being relayed to another
// server.
type Join struct {
	Origin      string
	PSK         string // the PSK of the scanned code; only its SHA-256 is signed
	DeviceID    DeviceID
	PhoneIDHash string
}

// SignedBytes returns the exact bytes the device signs, in the line format
// of Decision.SignedBytes:
//
//	qrauth-v2 join\n
//	origin=ORIGIN\n
//	psk-sha256=HEX\n
//	device=DEVICE\n
//	phone=PHONEIDHASH\n
func (j *Join) SignedBytes() []byte {
	sum := sha256.Sum256([]byte(j.PSK))
	return signedLines("qrauth-v2 join", [][2]string{
		{"origin", j.Origin},
		{"psk-sha256", hex.EncodeToString(sum[:])},
		{"device", string(j.DeviceID)},
		{"phone", j.PhoneIDHash},
	})
}

// Sign signs j with priv and returns the base64url signature.
func (j *Join) Sign(priv ed25519.PrivateKey) string {
	return base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, j.SignedBytes()))
}

// Verify checks sig (base64url) against pub, which must be the key of
// j.DeviceID. It returns EUNAUTHORIZED "bad_signature" otherwise, whatever
// the cause, so a refusal says nothing about the device or the account.
func (j *Join) Verify(pub ed25519.PublicKey, sig string) error {
	s, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || len(s) != ed25519.SignatureSize || len(pub) != ed25519.PublicKeySize ||
		DeviceIDFromKey(pub) != j.DeviceID ||
		strings.ContainsAny(j.Origin+string(j.DeviceID)+j.PhoneIDHash, "\n") ||
		!verifyEd25519(pub, j.SignedBytes(), s) {
		return Errorf(EUNAUTHORIZED, "bad_signature", "The phone's signature is not valid.")
	}
	return nil
}
