package main

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"regexp"
	"strings"
	"testing"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/internal/qrimage"
	"github.com/qrauth/qrauth/recovery"
	"github.com/qrauth/qrauth/wire"
)

// halfBlocks reads a QR code drawn in Unicode half blocks back into an
// image (light where the block characters are), 4 pixels a module.
func halfBlocks(t *testing.T, text string) image.Image {
	t.Helper()
	var rows [][2][]bool // per text line: top and bottom module rows
	for _, line := range strings.Split(text, "\n") {
		if !strings.ContainsAny(line, "█▀▄") {
			continue
		}
		var top, bot []bool
		for _, r := range line {
			top = append(top, r == '█' || r == '▀')
			bot = append(bot, r == '█' || r == '▄')
		}
		rows = append(rows, [2][]bool{top, bot})
	}
	if len(rows) == 0 {
		t.Fatal("no QR code in the output")
	}
	const px = 4
	w, h := len(rows[0][0]), 2*len(rows)
	img := image.NewGray(image.Rect(0, 0, (w+8)*px, (h+8)*px))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	for ly, r := range rows {
		for half := range 2 {
			for x, light := range r[half] {
				if light {
					continue
				}
				for dy := range px {
					for dx := range px {
						img.SetGray((x+4)*px+dx, (2*ly+half+4)*px+dy, color.Gray{})
					}
				}
			}
		}
	}
	return img
}

// `qrauthd admin users recover USER` prints a link code, as text and as a
// terminal QR code of its URL, that links a new phone once; the audit log
// names the operator.
func TestAdminUsersRecover(t *testing.T) {
	m := MustRunMain(t)
	origin := m.Server.Origin()
	uid := signUp(t, origin, "+41 79 000 00 01", "Grace Hopper")
	var out, errOut bytes.Buffer
	if code := runAdmin(context.Background(), []string{"-data", m.DataPath, "users", "recover", string(uid)}, &out, &errOut); code != 0 {
		t.Fatalf("users recover: %d %q", code, errOut.String())
	}
	code := regexp.MustCompile(`(?m)^  ([0-9A-Z]{4}(-[0-9A-Z]{4}){3})$`).FindStringSubmatch(out.String())
	if code == nil {
		t.Fatalf("no code in %q", out.String())
	}
	got, err := qrimage.Decode(halfBlocks(t, out.String()))
	if err != nil || got != wire.RecoverURL(origin, code[1]) {
		t.Fatalf("the terminal QR code reads %q, %v; want %q", got, err, wire.RecoverURL(origin, code[1]))
	}

	ctx := t.Context()
	dev, err := appclient.Init(ctx, appclient.InitOptions{Server: origin, Phone: "+41 79 000 00 09", Name: "New"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := dev.Recover(ctx, got)
	if err != nil || r.UserID != uid || r.Kind != recovery.KindLink {
		t.Fatalf("recover: %+v, %v", r, err)
	}
	evs, err := m.DB.ListAudit(ctx, qrauth.AuditFilter{UserID: uid})
	if err != nil || evs[len(evs)-1].Type != recovery.AuditRecovered || !strings.Contains(evs[len(evs)-1].Detail, "issued by operator") {
		t.Fatalf("audit: %+v %v", evs, err)
	}

	errOut.Reset()
	if code := runAdmin(context.Background(), []string{"-data", m.DataPath, "users", "recover"}, &out, &errOut); code != 2 {
		t.Fatalf("no user: %d %q", code, errOut.String())
	}
	errOut.Reset()
	if code := runAdmin(context.Background(), []string{"-data", m.DataPath, "users", "recover", "u_nobody"}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "user_not_found") {
		t.Fatalf("unknown user: %d %q", code, errOut.String())
	}
}
