package appclient

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/wire"
)

// Timing and size limits of the app socket.
const (
	// readLimit is the largest message the app reads. The server's own
	// frames are small; the margin over wire.MaxFrameSize leaves room for
	// a long user agent or place in the challenge.
	readLimit = wire.MaxFrameSize * 4

	// handshakeTimeout bounds the WebSocket handshake of the default
	// dialer when the context has no earlier deadline.
	handshakeTimeout = 30 * time.Second

	// writeWait bounds one write when the context allows longer: a frame
	// is small, so a write that takes this long means a dead peer.
	writeWait = 10 * time.Second

	// closeGrace bounds the write of the close frame in Close.
	closeGrace = time.Second

	// pendingMessages is how many server messages the read pump buffers
	// before it stops reading (and so stops answering pings). The protocol
	// has at most three server messages per scan.
	pendingMessages = 8
)

// ScanOptions configure Device.Scan. The zero value is the default.
type ScanOptions struct {
	// Dialer dials the app socket; nil means a dialer with a 30 s
	// handshake timeout and the environment's proxy settings.
	Dialer *websocket.Dialer
	// Socket is the app socket URL (ws or wss); "" means the app_socket of
	// the server's discovery document, fetched for each scan.
	Socket string
}

// ApproveOptions configure Scan.Approve.
type ApproveOptions struct {
	// Profile, for mode signup only, fills in the sign-up form from the
	// phone; both its fields may be empty. Nil leaves the form to the
	// browser (or to a later SendProfile).
	Profile *qrauth.Profile
}

// Scan is one joined room: the app socket after the server's challenge and
// before the outcome. Read Challenge, show it to the person, then call
// Approve or Deny exactly once, and Close when done.
//
// A goroutine reads the socket for the whole life of a Scan, so that the
// server's pings are answered while the person decides and a server that
// ends the room is noticed. The methods other than Close must not be called
// concurrently with each other.
type Scan struct {
	// Challenge is the server's challenge: mode, room, nonce, origin and
	// the browser's context. Its Origin has been checked against the
	// device's origin.
	Challenge *wire.ServerMessage

	device *Device
	conn   *websocket.Conn

	msgs   chan *wire.ServerMessage // server messages, in order
	done   chan struct{}            // closed when the read pump has ended
	err    error                    // why it ended; read only after done
	closed chan struct{}            // closed by Close
	once   sync.Once

	decided     bool
	approved    bool
	profileSent bool
}

// Scan joins the room of a scanned QR code and returns the server's
// challenge. qrURL is the text of the code; it must be a code of the
// device's origin (see ParseQRURL), or nothing is sent at all. The app
// socket is dialed without an Origin header, as native apps do.
//
// Errors are *qrauth.Error: the server's own refusal (such as ENOTFOUND for
// an unknown or used code), EINVALID "foreign_origin" for a code or a
// challenge of another origin, EEXPIRED "timeout" when ctx ends first.
// Cancelling ctx after Scan returned does not affect the Scan.
func (d *Device) Scan(ctx context.Context, qrURL string, opts ScanOptions) (*Scan, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	psk, err := ParseQRURL(d.Origin, qrURL)
	if err != nil {
		return nil, err
	}
	socket := opts.Socket
	if socket == "" {
		disc, err := Discover(ctx, d.HTTPClient, d.Server)
		if err != nil {
			return nil, err
		}
		if !sameOrigin(disc.Origin, d.Origin) {
			return nil, qrauth.Errorf(qrauth.EINVALID, "origin_changed",
				"The server now calls itself %s, not %s; run init again if that is right.", disc.Origin, d.Origin)
		}
		socket = disc.AppSocket
	}
	dialer := opts.Dialer
	if dialer == nil {
		dialer = &websocket.Dialer{Proxy: http.ProxyFromEnvironment, HandshakeTimeout: handshakeTimeout}
	}
	conn, resp, err := dialer.DialContext(ctx, socket, nil)
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			defer resp.Body.Close()
			return nil, responseError(resp)
		}
		return nil, transportError(ctx, socket, err)
	}
	conn.SetReadLimit(readLimit)
	s := &Scan{
		device: d,
		conn:   conn,
		msgs:   make(chan *wire.ServerMessage, pendingMessages),
		done:   make(chan struct{}),
		closed: make(chan struct{}),
	}
	go s.readPump()

	// Protocol 2: the join is signed, for the device's own origin, so the
	// server learns the phone holds the key before it says anything about
	// the account; the key goes along for a phone not registered yet.
	join := wire.Join{Origin: d.Origin, PSK: psk, DeviceID: d.ID(), PhoneIDHash: d.PhoneIDHash}
	err = s.write(ctx, &wire.AppFrame{
		Type:        wire.MsgJoin,
		PSK:         psk,
		DeviceID:    d.ID(),
		PhoneIDHash: d.PhoneIDHash,
		PublicKey:   base64.RawURLEncoding.EncodeToString(d.PublicKey()),
		Signature:   join.Sign(d.PrivateKey),
	})
	if err == nil {
		s.Challenge, err = s.next(ctx, wire.MsgChallenge)
	}
	if err == nil {
		err = checkChallenge(s.Challenge, d.Origin)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// checkChallenge refuses a challenge the app must not sign: one for another
// origin, of an unknown mode, or with a value that could make the signed
// lines ambiguous.
func checkChallenge(m *wire.ServerMessage, origin string) error {
	if !sameOrigin(m.Origin, origin) {
		return qrauth.Errorf(qrauth.EINVALID, "foreign_origin",
			"The server asks to sign for %q, not for your server %s; refused.", m.Origin, origin)
	}
	switch m.Mode {
	case wire.ModeLogin, wire.ModeSignUp, wire.ModeLink:
	default:
		return qrauth.Errorf(qrauth.EINVALID, "bad_challenge", "The server's challenge has an unknown mode %q.", m.Mode)
	}
	for _, v := range []string{m.Origin, m.Room, m.Nonce} {
		if v == "" || len(v) > 512 || strings.ContainsAny(v, "\r\n\x00") {
			return qrauth.Errorf(qrauth.EINVALID, "bad_challenge", "The server's challenge is malformed.")
		}
	}
	return nil
}

// SiteName is the name of the relying site the browser signs in for (an
// OpenID Connect client, as registered on the server), or "" for a sign-in
// to the server itself. Show it ("Sign in to NAME"): the person should
// know where the sign-in leads. It is display-only: the signed decision
// does not cover it, as it does not cover the browser's context.
func (s *Scan) SiteName() string {
	if s.Challenge.Site == nil {
		return ""
	}
	return s.Challenge.Site.Name
}

// Approve signs and sends the approval and returns the server's answer: a
// message of type done (Result signed_in, signed_up or linked), or, for a
// sign-up without a profile, one of type profile_needed; then either the
// browser submits the form (call Wait) or the phone does (call
// SendProfile). A refusal by the server is returned as *qrauth.Error.
func (s *Scan) Approve(ctx context.Context, opts ApproveOptions) (*wire.ServerMessage, error) {
	f, err := s.decision(wire.DecisionApprove)
	if err != nil {
		return nil, err
	}
	if opts.Profile != nil {
		if s.Challenge.Mode != wire.ModeSignUp {
			return nil, qrauth.Errorf(qrauth.EINVALID, "profile_not_allowed", "A profile can be sent only when signing up.")
		}
		p := *opts.Profile
		if err := p.Normalize(); err != nil {
			return nil, err
		}
		f.Profile = &p
	}
	s.decided, s.approved = true, true
	if err := s.write(ctx, f); err != nil {
		return nil, err
	}
	if s.Challenge.Mode == wire.ModeSignUp {
		return s.next(ctx, wire.MsgDone, wire.MsgNeedsForm)
	}
	return s.next(ctx, wire.MsgDone)
}

// Deny signs and sends the refusal and returns the server's done message
// (Result denied). Denying is signed too, so that nobody but the phone can
// end the room in its name.
func (s *Scan) Deny(ctx context.Context) (*wire.ServerMessage, error) {
	f, err := s.decision(wire.DecisionDeny)
	if err != nil {
		return nil, err
	}
	s.decided = true
	if err := s.write(ctx, f); err != nil {
		return nil, err
	}
	return s.next(ctx, wire.MsgDone)
}

// decision builds the signed decision frame. The origin is checked again
// right before signing: the signature is what the server trusts.
func (s *Scan) decision(decision string) (*wire.AppFrame, error) {
	if s.decided {
		return nil, qrauth.Errorf(qrauth.ECONFLICT, "already_decided", "This code was already answered.")
	}
	d, ch := s.device, s.Challenge
	if err := checkChallenge(ch, d.Origin); err != nil {
		return nil, err
	}
	name, err := qrauth.NormalizeDeviceName(d.Name)
	if err != nil {
		return nil, err
	}
	dec := wire.Decision{
		Origin:      ch.Origin,
		Room:        ch.Room,
		Nonce:       ch.Nonce,
		Mode:        ch.Mode,
		DeviceID:    d.ID(),
		PhoneIDHash: d.PhoneIDHash,
		Decision:    decision,
	}
	f := &wire.AppFrame{
		Type:       wire.MsgDecision,
		Decision:   decision,
		Signature:  dec.Sign(d.PrivateKey),
		DeviceName: name,
	}
	if ch.Mode == wire.ModeSignUp || ch.Mode == wire.ModeLink {
		f.PublicKey = base64.RawURLEncoding.EncodeToString(d.PublicKey())
	}
	return f, nil
}

// SendProfile sends the sign-up form from the phone after Approve returned
// profile_needed, and returns the server's done message.
func (s *Scan) SendProfile(ctx context.Context, p qrauth.Profile) (*wire.ServerMessage, error) {
	if !s.approved || s.Challenge.Mode != wire.ModeSignUp || s.profileSent {
		return nil, qrauth.Errorf(qrauth.EINVALID, "profile_not_expected", "A profile can be sent once, after approving a sign-up.")
	}
	if err := p.Normalize(); err != nil {
		return nil, err
	}
	s.profileSent = true
	if err := s.write(ctx, &wire.AppFrame{Type: wire.MsgProfile, Name: p.Name, Email: p.Email}); err != nil {
		return nil, err
	}
	return s.next(ctx, wire.MsgDone)
}

// Wait returns the server's done message after Approve returned
// profile_needed and the browser is to submit the sign-up form.
func (s *Scan) Wait(ctx context.Context) (*wire.ServerMessage, error) {
	if !s.decided {
		return nil, qrauth.Errorf(qrauth.EINVALID, "not_decided", "Approve or deny the code first.")
	}
	return s.next(ctx, wire.MsgDone)
}

// Close ends the scan: it sends a normal close frame, closes the socket and
// waits for the read pump to end. Closing before a decision leaves the room
// to expire on the server. Close may be called more than once and
// concurrently with the other methods.
func (s *Scan) Close() error {
	s.once.Do(func() {
		close(s.closed)
		s.conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(closeGrace))
		s.conn.Close()
	})
	<-s.done
	return nil
}

// readPump owns all reads of the socket. Reading also runs gorilla's
// default ping handler, which answers the server's pings.
func (s *Scan) readPump() {
	defer close(s.done)
	for {
		typ, data, err := s.conn.ReadMessage()
		if err != nil {
			s.err = err
			return
		}
		var m wire.ServerMessage
		if typ != websocket.TextMessage || json.Unmarshal(data, &m) != nil {
			s.err = qrauth.Errorf(qrauth.EINVALID, "malformed_message", "The server sent a message this app cannot read.")
			return
		}
		select {
		case s.msgs <- &m:
		case <-s.closed:
			return
		}
	}
}

// appMessages are the message types the server sends to the app. Others
// are skipped, so that a newer server may add informational messages.
var appMessages = map[string]bool{
	wire.MsgChallenge: true,
	wire.MsgNeedsForm: true,
	wire.MsgDone:      true,
	wire.MsgError:     true,
}

// next returns the next server message of one of the wanted types. An
// error message becomes its *qrauth.Error, as does the end of the socket; a
// known message of another type is a protocol violation.
func (s *Scan) next(ctx context.Context, want ...string) (*wire.ServerMessage, error) {
	for {
		var m *wire.ServerMessage
		select {
		case m = <-s.msgs:
		case <-s.done:
			select {
			case m = <-s.msgs: // messages read before the end come first
			default:
				return nil, s.endError()
			}
		case <-ctx.Done():
			return nil, contextError(ctx.Err())
		}
		if m.Type == wire.MsgError {
			return nil, messageError(m)
		}
		for _, w := range want {
			if m.Type == w {
				return m, nil
			}
		}
		if appMessages[m.Type] {
			return nil, qrauth.Errorf(qrauth.EINTERNAL, "unexpected_message",
				"The server sent %q where %s was expected.", m.Type, strings.Join(want, " or "))
		}
	}
}

// endError explains why the read pump ended.
func (s *Scan) endError() error {
	select {
	case <-s.closed:
		return qrauth.Errorf(qrauth.EINVALID, "scan_closed", "The scan was closed.")
	default:
	}
	return socketError(s.err)
}

// write sends one frame, with the write deadline of ctx (at most
// writeWait). If the write fails because the server already ended the
// room, the server's reason is returned rather than a broken pipe.
func (s *Scan) write(ctx context.Context, f *wire.AppFrame) error {
	if err := ctx.Err(); err != nil {
		return contextError(err)
	}
	data, err := json.Marshal(f)
	if err != nil {
		return qrauth.Internal(err)
	}
	deadline := time.Now().Add(writeWait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	s.conn.SetWriteDeadline(deadline)
	if err := s.conn.WriteMessage(websocket.TextMessage, data); err != nil {
		s.conn.Close() // ends the read pump; what it read is still queued
		if serr := s.serverEnded(); serr != nil {
			return serr
		}
		if ctx.Err() != nil {
			return contextError(ctx.Err())
		}
		return socketError(err)
	}
	return nil
}

// serverEnded is called after a failed write, once the socket is closed. It
// waits for the read pump to end and returns the server's error message or
// close reason if the server had ended the room, nil otherwise.
func (s *Scan) serverEnded() error {
	for {
		select {
		case m := <-s.msgs:
			if m.Type == wire.MsgError {
				return messageError(m)
			}
		case <-s.done:
			for {
				select {
				case m := <-s.msgs:
					if m.Type == wire.MsgError {
						return messageError(m)
					}
				default:
					var ce *websocket.CloseError
					if errors.As(s.err, &ce) {
						return socketError(s.err)
					}
					return nil
				}
			}
		}
	}
}

// messageError returns the *qrauth.Error of a server error message.
func messageError(m *wire.ServerMessage) *qrauth.Error {
	return serverError(wire.ErrorBody{Code: m.Code, Reason: m.Reason, Message: m.Message}, 0)
}
