package appclient_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/wire"
)

// scanTest runs script on a fake server, inits a device for it and scans
// its code.
func scanTest(t *testing.T, script func(c *appConn, d *appclient.Device)) (*fakeServer, *appclient.Device, *appclient.Scan, error) {
	t.Helper()
	var d *appclient.Device
	ready := make(chan struct{})
	s := newFakeServer(t, func(c *appConn) {
		<-ready
		script(c, d)
	})
	d = mustInit(t, s)
	close(ready)
	sc, err := d.Scan(context.Background(), qrURL(s), appclient.ScanOptions{})
	if sc != nil {
		t.Cleanup(func() { sc.Close() })
	}
	return s, d, sc, err
}

func TestScan(t *testing.T) {
	t.Run("Login", func(t *testing.T) {
		_, d, sc, err := scanTest(t, func(c *appConn, d *appclient.Device) {
			if !c.ExpectJoin(d) {
				return
			}
			ch := c.Challenge(wire.ModeLogin)
			c.Send(ch)
			f := c.ExpectDecision(d, ch, wire.DecisionApprove)
			if f != nil && (f.DeviceName != "Test phone" || f.Profile != nil) {
				t.Errorf("decision = %+v", f)
			}
			c.Done("signed_in", "u_alice")
		})
		if err != nil {
			t.Fatal(err)
		}
		ch := sc.Challenge
		if ch.Mode != wire.ModeLogin || ch.Context.IP != "203.0.113.7" || ch.Account.Name != "Alice" ||
			!*ch.KnownAddress || ch.Proximity.Warning == "" || ch.Origin != d.Origin {
			t.Fatalf("challenge = %+v", ch)
		}
		done, err := sc.Approve(context.Background(), appclient.ApproveOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if done.Type != wire.MsgDone || done.Result != "signed_in" || done.UserID != "u_alice" {
			t.Fatalf("done = %+v", done)
		}
		_, err = sc.Approve(context.Background(), appclient.ApproveOptions{})
		wantError(t, err, qrauth.ECONFLICT, "already_decided")
	})

	t.Run("Link", func(t *testing.T) {
		_, _, sc, err := scanTest(t, func(c *appConn, d *appclient.Device) {
			if !c.ExpectJoin(d) {
				return
			}
			ch := c.Challenge(wire.ModeLink)
			c.Send(ch)
			c.ExpectDecision(d, ch, wire.DecisionApprove)
			c.Done("linked", "u_alice")
		})
		if err != nil {
			t.Fatal(err)
		}
		done, err := sc.Approve(context.Background(), appclient.ApproveOptions{})
		if err != nil || done.Result != "linked" {
			t.Fatalf("done = %+v, %v", done, err)
		}
	})

	t.Run("SignUpWithProfile", func(t *testing.T) {
		_, _, sc, err := scanTest(t, func(c *appConn, d *appclient.Device) {
			if !c.ExpectJoin(d) {
				return
			}
			ch := c.Challenge(wire.ModeSignUp)
			c.Send(ch)
			f := c.ExpectDecision(d, ch, wire.DecisionApprove)
			if f == nil || f.Profile == nil || *f.Profile != (qrauth.Profile{Name: "Alice", Email: "alice@example.com"}) {
				t.Errorf("decision = %+v", f)
			}
			c.Done("signed_up", "u_alice")
		})
		if err != nil {
			t.Fatal(err)
		}
		done, err := sc.Approve(context.Background(), appclient.ApproveOptions{
			Profile: &qrauth.Profile{Name: " Alice ", Email: "alice@example.com"},
		})
		if err != nil || done.Result != "signed_up" {
			t.Fatalf("done = %+v, %v", done, err)
		}
	})

	t.Run("SignUpProfileFromPhone", func(t *testing.T) {
		_, _, sc, err := scanTest(t, func(c *appConn, d *appclient.Device) {
			if !c.ExpectJoin(d) {
				return
			}
			ch := c.Challenge(wire.ModeSignUp)
			c.Send(ch)
			if f := c.ExpectDecision(d, ch, wire.DecisionApprove); f == nil || f.Profile != nil {
				t.Errorf("decision = %+v, want no profile", f)
				return
			}
			c.Send(&wire.ServerMessage{Type: wire.MsgNeedsForm})
			f := c.Read()
			if f == nil || f.Type != wire.MsgProfile || f.Name != "Bob" || f.Email != "" {
				t.Errorf("profile = %+v", f)
			}
			c.Done("signed_up", "u_bob")
		})
		if err != nil {
			t.Fatal(err)
		}
		m, err := sc.Approve(context.Background(), appclient.ApproveOptions{})
		if err != nil || m.Type != wire.MsgNeedsForm {
			t.Fatalf("approve = %+v, %v; want profile_needed", m, err)
		}
		_, err = sc.SendProfile(context.Background(), qrauth.Profile{Email: "not an address"})
		wantError(t, err, qrauth.EINVALID, "invalid_email")
		done, err := sc.SendProfile(context.Background(), qrauth.Profile{Name: "Bob"})
		if err != nil || done.Result != "signed_up" || done.UserID != "u_bob" {
			t.Fatalf("done = %+v, %v", done, err)
		}
	})

	t.Run("SignUpFormInBrowser", func(t *testing.T) {
		_, _, sc, err := scanTest(t, func(c *appConn, d *appclient.Device) {
			if !c.ExpectJoin(d) {
				return
			}
			ch := c.Challenge(wire.ModeSignUp)
			c.Send(ch)
			c.ExpectDecision(d, ch, wire.DecisionApprove)
			c.Send(&wire.ServerMessage{Type: wire.MsgNeedsForm})
			c.Done("signed_up", "u_carol") // the browser submitted the form
		})
		if err != nil {
			t.Fatal(err)
		}
		if m, err := sc.Approve(context.Background(), appclient.ApproveOptions{}); err != nil || m.Type != wire.MsgNeedsForm {
			t.Fatalf("approve = %+v, %v", m, err)
		}
		done, err := sc.Wait(context.Background())
		if err != nil || done.Result != "signed_up" {
			t.Fatalf("done = %+v, %v", done, err)
		}
	})

	t.Run("Deny", func(t *testing.T) {
		_, _, sc, err := scanTest(t, func(c *appConn, d *appclient.Device) {
			if !c.ExpectJoin(d) {
				return
			}
			ch := c.Challenge(wire.ModeSignUp)
			c.Send(ch)
			c.ExpectDecision(d, ch, wire.DecisionDeny)
			c.Done("denied", "")
		})
		if err != nil {
			t.Fatal(err)
		}
		done, err := sc.Deny(context.Background())
		if err != nil || done.Result != "denied" {
			t.Fatalf("done = %+v, %v", done, err)
		}
	})

	t.Run("ErrProfileOutsideSignUp", func(t *testing.T) {
		_, _, sc, err := scanTest(t, func(c *appConn, d *appclient.Device) {
			if !c.ExpectJoin(d) {
				return
			}
			c.Send(c.Challenge(wire.ModeLogin))
			if f := c.Read(); f != nil {
				t.Errorf("app sent %+v after a refused approval", f)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = sc.Approve(context.Background(), appclient.ApproveOptions{Profile: &qrauth.Profile{Name: "X"}})
		wantError(t, err, qrauth.EINVALID, "profile_not_allowed")
	})

	t.Run("ErrJoinRefused", func(t *testing.T) {
		_, _, _, err := scanTest(t, func(c *appConn, d *appclient.Device) {
			c.ExpectJoin(d)
			c.Fail(qrauth.Errorf(qrauth.ENOTFOUND, "unknown_psk", "This code is not valid any more. Scan a new one."))
		})
		wantError(t, err, qrauth.ENOTFOUND, "unknown_psk")
		if msg := qrauth.ErrorMessage(err); msg != "This code is not valid any more. Scan a new one." {
			t.Fatalf("message = %q", msg)
		}
	})

	t.Run("ErrBareCloseCode", func(t *testing.T) {
		_, _, _, err := scanTest(t, func(c *appConn, d *appclient.Device) {
			c.ExpectJoin(d)
			c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4410, "room_expired"))
		})
		wantError(t, err, qrauth.EEXPIRED, "room_expired")
	})

	t.Run("ErrForeignChallenge", func(t *testing.T) {
		_, _, _, err := scanTest(t, func(c *appConn, d *appclient.Device) {
			if !c.ExpectJoin(d) {
				return
			}
			ch := c.Challenge(wire.ModeLogin)
			ch.Origin = "https://evil.example"
			c.Send(ch)
			if f := c.Read(); f != nil {
				t.Errorf("app answered a foreign challenge with %+v", f)
			}
		})
		wantError(t, err, qrauth.EINVALID, "foreign_origin")
	})

	t.Run("ErrAmbiguousChallenge", func(t *testing.T) {
		_, _, _, err := scanTest(t, func(c *appConn, d *appclient.Device) {
			if !c.ExpectJoin(d) {
				return
			}
			ch := c.Challenge(wire.ModeLogin)
			ch.Nonce = "n\ndecision=approve"
			c.Send(ch)
			c.Read()
		})
		wantError(t, err, qrauth.EINVALID, "bad_challenge")
	})

	t.Run("ErrForeignQR", func(t *testing.T) {
		s := newFakeServer(t, func(c *appConn) { t.Error("app connected for a foreign code") })
		d := mustInit(t, s)
		_, err := d.Scan(context.Background(), "https://evil.example/q/"+testPSK, appclient.ScanOptions{})
		wantError(t, err, qrauth.EINVALID, "foreign_origin")
		if s.Joins() != 0 {
			t.Fatalf("app opened %d sockets", s.Joins())
		}
	})

	t.Run("ErrOversizedMessage", func(t *testing.T) {
		_, _, _, err := scanTest(t, func(c *appConn, d *appclient.Device) {
			c.ExpectJoin(d)
			ch := c.Challenge(wire.ModeLogin)
			ch.Context.UserAgent = strings.Repeat("x", wire.MaxFrameSize*4)
			c.WriteJSON(ch) // may fail: the app hangs up after the header
			c.Read()
		})
		wantError(t, err, qrauth.EINVALID, "frame_too_large")
	})

	t.Run("ErrCanceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var d *appclient.Device
		ready := make(chan struct{})
		s := newFakeServer(t, func(c *appConn) {
			<-ready
			c.ExpectJoin(d)
			cancel() // the person gives up while the server is silent
			c.Read()
		})
		d = mustInit(t, s)
		close(ready)
		_, err := d.Scan(ctx, qrURL(s), appclient.ScanOptions{})
		wantError(t, err, qrauth.EINTERNAL, "canceled")
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want it to wrap context.Canceled", err)
		}
	})

	t.Run("ErrExpiredDeadline", func(t *testing.T) {
		s := newFakeServer(t, func(c *appConn) { t.Error("app connected after its deadline") })
		d := mustInit(t, s)
		ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
		defer cancel()
		_, err := d.Scan(ctx, qrURL(s), appclient.ScanOptions{})
		wantError(t, err, qrauth.EEXPIRED, "timeout")
	})

	t.Run("PingsAnsweredWhileDeciding", func(t *testing.T) {
		pong := make(chan struct{})
		_, _, sc, err := scanTest(t, func(c *appConn, d *appclient.Device) {
			if !c.ExpectJoin(d) {
				return
			}
			ch := c.Challenge(wire.ModeLogin)
			c.Send(ch)
			c.SetPongHandler(func(string) error { close(pong); return nil })
			c.WriteMessage(websocket.PingMessage, []byte("p"))
			c.ExpectDecision(d, ch, wire.DecisionApprove) // the pong arrives first
			c.Done("signed_in", "u_alice")
		})
		if err != nil {
			t.Fatal(err)
		}
		<-pong // the person is still deciding: nothing in the test reads the socket
		if _, err := sc.Approve(context.Background(), appclient.ApproveOptions{}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ErrRoomEndedWhileDeciding", func(t *testing.T) {
		_, _, sc, err := scanTest(t, func(c *appConn, d *appclient.Device) {
			if !c.ExpectJoin(d) {
				return
			}
			c.Send(c.Challenge(wire.ModeLogin))
			c.Fail(qrauth.Errorf(qrauth.EEXPIRED, "room_expired", "The code expired. Get a new one in the browser."))
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = sc.Approve(context.Background(), appclient.ApproveOptions{})
		wantError(t, err, qrauth.EEXPIRED, "room_expired")
	})
}
