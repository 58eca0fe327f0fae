package oathflow

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-pdf/fpdf"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/oath"
	qrcode "github.com/skip2/go-qrcode"
)

// An activation letter is a printable PDF that carries an OATH secret to a
// person: the otpauth:// QR code, the Base32 secret and the steps to set
// up an app. It is written into Config.LetterDir (for a print or mail
// room), never sent to the browser of whoever ordered it.

// oathLetter is what goes on a letter.
type oathLetter struct {
	Key     oathKey
	Token   *oath.Token
	User    *qrauth.User
	Origin  string
	Created time.Time
}

// Size of one QR module on the letter: 0.04 inch, about 1 mm, which any
// phone camera reads; a typical otpauth:// URI (53 modules with the quiet
// zone) prints 54 mm wide. The image has 16 pixels per module (400 dpi).
const (
	letterModuleMM     = 25.4 * 0.04
	letterModulePixels = 16
)

// renderOATHLetter returns the PDF of an activation letter. fpdf's core
// fonts speak Windows-1252, so names in other scripts print with
// substitutes; the QR code and secret are ASCII and always exact.
func renderOATHLetter(l oathLetter) ([]byte, error) {
	code, err := qrcode.New(l.Key.URI, qrcode.Medium)
	if err != nil {
		return nil, err
	}
	// Whole pixels per module: a printer or a rasteriser scaling the image
	// then never smears one module into its neighbour.
	png, err := code.PNG(-letterModulePixels)
	if err != nil {
		return nil, err
	}
	pdf := fpdf.New("P", "mm", "A4", "")
	tr := pdf.UnicodeTranslatorFromDescriptor("")
	pdf.SetTitle("Activation letter", false)
	pdf.SetCreationDate(l.Created)
	pdf.SetModificationDate(l.Created)
	pdf.SetMargins(22, 20, 22)
	pdf.SetAutoPageBreak(true, 18)
	pdf.AddPage()
	const width = 210 - 2*22

	pdf.SetFont("Helvetica", "B", 10)
	pdf.SetTextColor(37, 99, 235)
	pdf.CellFormat(width, 6, tr(l.Key.Issuer), "", 1, "L", false, 0, "")
	pdf.SetTextColor(20, 20, 20)
	pdf.SetFont("Helvetica", "B", 20)
	pdf.CellFormat(width, 11, "Your authenticator activation letter", "", 1, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 10)
	who := l.User.Name
	if who == "" {
		who = l.Key.Account
	}
	pdf.CellFormat(width, 5.5, tr("For: "+who), "", 1, "L", false, 0, "")
	pdf.CellFormat(width, 5.5, tr("Account: "+l.Key.Account+"   ("+string(l.User.ID)+")"), "", 1, "L", false, 0, "")
	pdf.CellFormat(width, 5.5, "Issued: "+l.Created.UTC().Format("2 January 2006 15:04 UTC")+"   Letter for token "+l.Token.ID, "", 1, "L", false, 0, "")
	pdf.Ln(4)

	// The warning comes before the secret, in a red frame.
	pdf.SetDrawColor(200, 30, 30)
	pdf.SetFillColor(253, 236, 236)
	pdf.SetLineWidth(0.6)
	pdf.SetFont("Helvetica", "B", 11)
	pdf.SetTextColor(150, 20, 20)
	pdf.MultiCell(width, 6, "CONFIDENTIAL: the QR code and the secret key on this letter are sensitive.", "LTR", "L", true)
	pdf.SetFont("Helvetica", "", 10)
	pdf.MultiCell(width, 5,
		"Anyone who scans the code or copies the key can make your sign-in codes. Do not photograph, copy "+
			"or share this letter. Set up your app yourself, then shred the letter or lock it away. If you "+
			"think someone else has seen it, ask your administrator for a new one.", "LRB", "L", true)
	pdf.SetTextColor(20, 20, 20)
	pdf.SetLineWidth(0.2)
	pdf.Ln(5)

	// Each module is exactly 0.04 inch and the code sits on that grid, so
	// that printers and rasterisers at the usual resolutions (100, 150,
	// 300, 600 dpi) draw every module as whole dots.
	top := math.Ceil(pdf.GetY()/letterModuleMM) * letterModuleMM
	left := math.Ceil(22/letterModuleMM) * letterModuleMM
	qrSize := float64(len(code.Bitmap())) * letterModuleMM
	pdf.RegisterImageOptionsReader("qr", fpdf.ImageOptions{ImageType: "PNG"}, bytes.NewReader(png))
	pdf.ImageOptions("qr", left, top, qrSize, qrSize, false, fpdf.ImageOptions{ImageType: "PNG"}, 0, "")

	// The steps, beside the code.
	x := left + qrSize + 8
	col := 22 + width - x
	pdf.SetXY(x, top)
	pdf.SetFont("Helvetica", "B", 12)
	pdf.CellFormat(col, 7, "Set up your app", "", 2, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 10)
	steps := []string{
		"1. Install an authenticator app on your phone, such as Google Authenticator, Microsoft " +
			"Authenticator, FreeOTP or Duo Mobile.",
		"2. In the app, add an account and choose to scan a QR code.",
		"3. Scan the code on the left. The app then shows \"" + l.Key.Issuer + "\" with a code that changes.",
		"4. When you sign in at " + l.Origin + ", scan the sign-in code with the qrauth app, then type the current code from the authenticator app.",
	}
	if l.Token.Kind == oath.HOTP {
		steps[2] = "3. Scan the code on the left. The app then shows \"" + l.Key.Issuer + "\"; tap it for a new code each time you sign in."
	}
	for _, s := range steps {
		pdf.SetX(x)
		pdf.MultiCell(col, 5, tr(s), "", "L", false)
		pdf.Ln(1.5)
	}
	pdf.SetY(max(pdf.GetY(), top+qrSize) + 6)

	pdf.SetFont("Helvetica", "B", 12)
	pdf.CellFormat(width, 7, "Cannot scan? Enter the key by hand", "", 1, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 10)
	kind := "Time-based (TOTP)"
	if l.Token.Kind == oath.HOTP {
		kind = "Counter-based (HOTP)"
	}
	rows := [][2]string{
		{"Issuer", l.Key.Issuer},
		{"Account", l.Key.Account},
		{"Type", kind},
		{"Digits", fmt.Sprint(l.Token.Digits)},
		{"Algorithm", string(l.Token.Algorithm)},
	}
	if l.Token.Kind == oath.TOTP {
		rows = append(rows, [2]string{"Period", fmt.Sprintf("%d seconds", l.Token.Period)})
	}
	for _, r := range rows {
		pdf.CellFormat(30, 5.5, r[0], "", 0, "L", false, 0, "")
		pdf.CellFormat(width-30, 5.5, tr(r[1]), "", 1, "L", false, 0, "")
	}
	pdf.CellFormat(30, 8, "Secret key", "", 0, "L", false, 0, "")
	pdf.SetFont("Courier", "B", 13)
	pdf.MultiCell(width-30, 8, groupSecret(l.Key.Secret), "", "L", false)
	pdf.SetFont("Helvetica", "", 9)
	pdf.Ln(3)
	pdf.SetTextColor(90, 90, 90)
	pdf.MultiCell(width, 4.5, "Spaces in the key do not matter. Letters are A-Z and digits 2-7 only: there is no 0, 1, 8 or 9.", "", "L", false)

	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// groupSecret writes a Base32 secret in groups of four, as apps accept it.
func groupSecret(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s[i:min(i+4, len(s))])
	}
	return b.String()
}

// writeLetter writes pdf into dir under a new name and returns its path.
// The file is created exclusively with mode 0600: it holds a secret.
func writeLetter(dir string, uid qrauth.UserID, at time.Time, pdf []byte) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	// User ids are base64url after "u_"; anything else would be a bug, but
	// it must never become a path.
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			return r
		}
		return -1
	}, string(uid))
	base := fmt.Sprintf("oath-letter-%s-%s", safe, at.UTC().Format("20060102-150405"))
	for i := 1; i < 100; i++ {
		name := base + ".pdf"
		if i > 1 {
			name = fmt.Sprintf("%s-%d.pdf", base, i)
		}
		path := filepath.Join(dir, name)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		} else if err != nil {
			return "", err
		}
		_, werr := f.Write(pdf)
		if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
			os.Remove(path)
			return "", err
		}
		return path, nil
	}
	return "", fmt.Errorf("too many letters named %s in %s", base, dir)
}
