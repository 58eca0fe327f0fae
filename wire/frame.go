package wire

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"time"
	"unicode/utf8"

	"github.com/qrauth/qrauth"
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
	QR            string `json:"qr,omitempty"`        // data:image/png;base64,...
	URL           string `json:"url,omitempty"`       // what the QR code encodes
	UserCode      string `json:"user_code,omitempty"` // login: the typed code of the same room, "7K3M-QX9D"
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
	Site         *SiteInfo       `json:"site,omitempty"` // login, signup: the relying site the browser signs in for

	// done
	Result string        `json:"result,omitempty"`
	UserID qrauth.UserID `json:"user_id,omitempty"`

	// error
	Code    string `json:"code,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// ErrorMessageFor builds the error message for err.
func ErrorMessageFor(err error) *ServerMessage {
	return &ServerMessage{Type: MsgError, Code: qrauth.ErrorCode(err), Reason: qrauth.ErrorReason(err), Message: qrauth.ErrorMessage(err)}
}

// DeviceInfo is what a browser or app learns about a device.
type DeviceInfo struct {
	ID   qrauth.DeviceID `json:"id"`
	Name string          `json:"name"`
}

// AccountInfo is what the phone learns about the account it signs in to.
type AccountInfo struct {
	Name string `json:"name"`
}

// SiteInfo names the relying site a browser signs in for (an OpenID
// Connect client): its name as registered on the server, never a value from
// the browser's URL. It is shown only; the decision does not sign it
// (docs/protocol.md §7.3).
type SiteInfo struct {
	Name string `json:"name"`
}

// MaxSiteName is the longest site name a challenge carries, in bytes; a
// longer registered name is cut at a character boundary.
const MaxSiteName = 100

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
	PSK         string          `json:"psk,omitempty"`
	DeviceID    qrauth.DeviceID `json:"device_id,omitempty"`
	PhoneIDHash string          `json:"phone_id_hash,omitempty"`

	// decision
	Decision   string          `json:"decision,omitempty"`
	Signature  string          `json:"signature,omitempty"`  // base64url, 64 bytes; join: of Join, decision: of Decision
	PublicKey  string          `json:"public_key,omitempty"` // base64url, 32 bytes; join: required; decision: optional
	DeviceName string          `json:"device_name,omitempty"`
	Profile    *qrauth.Profile `json:"profile,omitempty"` // signup: fill the form from the phone

	// profile
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

var errMalformed = qrauth.Errorf(qrauth.EINVALID, "malformed_frame", "The message is not valid JSON of a known shape.")

// ErrInvalidUTF8 refuses JSON text that is not valid UTF-8. Go's decoder
// would silently turn such bytes (and lone surrogate escapes) into U+FFFD
// and store the result; a client's bad text must be refused instead.
var ErrInvalidUTF8 = qrauth.Errorf(qrauth.EINVALID, "invalid_utf8", "The text is not valid UTF-8.")

// CheckJSONText returns ErrInvalidUTF8 if data is not valid UTF-8 or if one
// of its strings holds a \u escape of a lone UTF-16 surrogate (which no
// UTF-8 text can encode). Every JSON body and frame passes here before it is
// decoded.
func CheckJSONText(data []byte) error {
	if !utf8.Valid(data) {
		return ErrInvalidUTF8
	}
	// Scan for \uD800–\uDFFF escapes: a high surrogate must be followed at
	// once by an escaped low one, and a low one must not stand alone. A
	// backslash only occurs in JSON inside strings, so no string tracking
	// is needed beyond skipping the escaped character.
	hex4 := func(i int) (rune, bool) {
		if i+4 > len(data) {
			return 0, false
		}
		var r rune
		for _, c := range data[i : i+4] {
			switch {
			case c >= '0' && c <= '9':
				r = r<<4 | rune(c-'0')
			case c >= 'a' && c <= 'f':
				r = r<<4 | rune(c-'a'+10)
			case c >= 'A' && c <= 'F':
				r = r<<4 | rune(c-'A'+10)
			default:
				return 0, false
			}
		}
		return r, true
	}
	for i := 0; i < len(data); i++ {
		if data[i] != '\\' || i+1 >= len(data) {
			continue
		}
		if data[i+1] != 'u' {
			i++ // skip the escaped character (it may be a backslash)
			continue
		}
		r, ok := hex4(i + 2)
		if !ok {
			continue // malformed: the decoder refuses it
		}
		i += 5
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return ErrInvalidUTF8
		case r >= 0xD800 && r <= 0xDBFF:
			if i+2 >= len(data) || data[i+1] != '\\' || data[i+2] != 'u' {
				return ErrInvalidUTF8
			}
			lo, ok := hex4(i + 3)
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return ErrInvalidUTF8
			}
			i += 6
		}
	}
	return nil
}

func decodeStrict(data []byte, v any) error {
	if len(data) > MaxFrameSize {
		return qrauth.Errorf(qrauth.EINVALID, "frame_too_large", "The message is larger than %d bytes.", MaxFrameSize)
	}
	if err := CheckJSONText(data); err != nil {
		return err
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
		p := qrauth.Profile{Name: f.Name, Email: f.Email}
		if err := p.Normalize(); err != nil {
			return nil, err
		}
		f.Name, f.Email = p.Name, p.Email
	default:
		return nil, qrauth.Errorf(qrauth.EINVALID, "unknown_type", "Unknown message type.")
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
		if !qrauth.ValidToken(f.PSK, 16, 64) {
			return nil, qrauth.Errorf(qrauth.EINVALID, "invalid_psk", "The code is not a qrauth code.")
		}
		if f.DeviceID == "" {
			return nil, qrauth.Errorf(qrauth.EINVALID, "device_id_required", "The join message must carry the device id.")
		}
		if !qrauth.ValidDeviceID(f.DeviceID) {
			return nil, qrauth.Errorf(qrauth.EINVALID, "invalid_device_id", "The device id is malformed.")
		}
		if !qrauth.ValidPhoneIDHash(f.PhoneIDHash) {
			return nil, qrauth.Errorf(qrauth.EINVALID, "invalid_phone_id_hash", "The phone id hash must be 64 lowercase hex digits.")
		}
		// Protocol 2: the join proves possession of the device key, so
		// that nothing about the account is sent to a party that only
		// knows a device id and a phone number.
		if f.Signature == "" || f.PublicKey == "" {
			return nil, qrauth.Errorf(qrauth.EINVALID, "join_not_signed",
				"The join must carry the device's public key and signature (protocol version %d); update the app.", ProtocolVersion)
		}
		if err := checkSignatureField(f.Signature); err != nil {
			return nil, err
		}
		pub, err := decodePublicKeyField(f.PublicKey)
		if err != nil {
			return nil, err
		}
		if qrauth.DeviceIDFromKey(pub) != f.DeviceID {
			return nil, errDeviceIDMismatch
		}
	case MsgDecision:
		if f.Decision != DecisionApprove && f.Decision != DecisionDeny {
			return nil, qrauth.Errorf(qrauth.EINVALID, "invalid_decision", "The decision must be approve or deny.")
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
		name, err := qrauth.NormalizeDeviceName(f.DeviceName)
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
		p := qrauth.Profile{Name: f.Name, Email: f.Email}
		if err := p.Normalize(); err != nil {
			return nil, err
		}
		f.Name, f.Email = p.Name, p.Email
	default:
		return nil, qrauth.Errorf(qrauth.EINVALID, "unknown_type", "Unknown message type.")
	}
	return &f, nil
}

var errDeviceIDMismatch = qrauth.Errorf(qrauth.EINVALID, "device_id_mismatch", "The public key does not match the device id.")

// checkSignatureField checks the form of a signature field: 64 bytes,
// base64url without padding.
func checkSignatureField(sig string) error {
	if b, err := base64.RawURLEncoding.DecodeString(sig); err != nil || len(b) != ed25519.SignatureSize || !qrauth.ValidToken(sig, 86, 86) {
		return qrauth.Errorf(qrauth.EINVALID, "invalid_signature_encoding", "The signature must be %d bytes, base64url without padding.", ed25519.SignatureSize)
	}
	return nil
}

// decodePublicKeyField decodes a public key field: 32 bytes, base64url
// without padding, and a key qrauth.CheckPublicKey accepts (weak_public_key).
func decodePublicKeyField(key string) (ed25519.PublicKey, error) {
	b, err := base64.RawURLEncoding.DecodeString(key)
	if err != nil || len(b) != ed25519.PublicKeySize || !qrauth.ValidToken(key, 43, 43) {
		return nil, qrauth.Errorf(qrauth.EINVALID, "invalid_public_key", "The public key must be %d bytes, base64url without padding.", ed25519.PublicKeySize)
	}
	if err := qrauth.CheckPublicKey(b); err != nil {
		return nil, err
	}
	return b, nil
}
