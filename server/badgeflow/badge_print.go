package badgeflow

import (
	"bytes"
	"time"

	"github.com/go-pdf/fpdf"
	"github.com/qrauth/qrauth/badge"
	qrcode "github.com/skip2/go-qrcode"
)

// Printable badges: a PNG of the QR code (for ID-card printers and
// templates of one's own) and a PDF of a whole card in ID-1 size
// (85.6 × 54 mm, as a bank card) with the QR code, the holder's name, the
// kind and, for an insecure badge, the "requires a second factor" mark.
// The QR code goes into the PDF as vector squares, so it stays sharp at
// any printer resolution.

// badgeQRModulePixels is the module size of the badge PNG: large enough to
// print at a few centimetres without blur.
const badgeQRModulePixels = 10

// badgeQR encodes a payload at error correction M, which keeps a secure
// payload at version 6 (41 modules): big modules for a webcam.
func badgeQR(payload string) (*qrcode.QRCode, error) {
	return qrcode.New(payload, qrcode.Medium)
}

// renderBadgePNG returns the QR code of payload as a PNG, quiet zone
// included.
func renderBadgePNG(payload string) ([]byte, error) {
	q, err := badgeQR(payload)
	if err != nil {
		return nil, err
	}
	return q.PNG(-badgeQRModulePixels)
}

// badgeCard is what a badge PDF shows.
type badgeCard struct {
	Payload string
	Name    string // display name of the holder
	Kind    badge.Kind
	ID      badge.ID
	Issued  time.Time
	Expires time.Time // zero: does not expire
	Service string    // the origin, so a found badge says where it belongs
}

// renderBadgePDF lays out one card.
func renderBadgePDF(card badgeCard) ([]byte, error) {
	q, err := badgeQR(card.Payload)
	if err != nil {
		return nil, err
	}
	const w, h = 85.6, 54.0
	pdf := fpdf.NewCustom(&fpdf.InitType{UnitStr: "mm", Size: fpdf.SizeType{Wd: w, Ht: h}})
	pdf.SetMargins(0, 0, 0)
	pdf.SetAutoPageBreak(false, 0)
	pdf.SetCreationDate(card.Issued)
	pdf.SetModificationDate(card.Issued)
	pdf.SetTitle("qrauth badge", false)
	pdf.SetCreator("qrauth", false)
	pdf.AddPage()
	// The core fonts speak Windows-1252; names in other scripts lose the
	// letters it lacks (see docs/badge.md).
	tr := pdf.UnicodeTranslatorFromDescriptor("")

	// Cutting guide.
	pdf.SetDrawColor(190, 190, 190)
	pdf.SetLineWidth(0.2)
	pdf.RoundedRect(0.3, 0.3, w-0.6, h-0.6, 3, "1234", "D")

	// The QR code, quiet zone included, as runs of dark modules.
	bm := q.Bitmap()
	const qx, qy, qs = 3.0, 4.0, 46.0
	mod := qs / float64(len(bm))
	pdf.SetFillColor(0, 0, 0)
	for y, row := range bm {
		for x := 0; x < len(row); {
			if !row[x] {
				x++
				continue
			}
			start := x
			for x < len(row) && row[x] {
				x++
			}
			// A hair of overlap closes the seams some renderers show
			// between adjacent squares.
			pdf.Rect(qx+float64(start)*mod, qy+float64(y)*mod, float64(x-start)*mod+0.02, mod+0.02, "F")
		}
	}

	// Text column.
	const tx, tw = 51.0, 31.5
	pdf.SetTextColor(79, 70, 229)
	pdf.SetFont("Helvetica", "B", 9)
	pdf.SetXY(tx, 5)
	pdf.CellFormat(tw, 4, "qrauth", "", 2, "L", false, 0, "")

	pdf.SetTextColor(20, 20, 20)
	pdf.SetFont("Helvetica", "B", 10.5)
	name := card.Name
	if name == "" {
		name = "Badge holder"
	}
	lines := pdf.SplitText(tr(name), tw)
	if len(lines) > 3 {
		lines = lines[:3]
		lines[2] += "..."
	}
	pdf.SetXY(tx, 11)
	for _, l := range lines {
		pdf.CellFormat(tw, 4.6, l, "", 2, "L", false, 0, "")
	}

	// para writes wrapped lines of text at the current position.
	para := func(text, style string, size, lineH float64) {
		pdf.SetFont("Helvetica", style, size)
		for _, l := range pdf.SplitText(tr(text), tw) {
			pdf.CellFormat(tw, lineH, l, "", 2, "L", false, 0, "")
		}
	}
	pdf.SetXY(tx, pdf.GetY()+1.5)
	pdf.SetTextColor(70, 70, 70)
	if card.Kind == badge.Insecure {
		para("Insecure badge", "B", 7.5, 3.6)
		para("Says who you are; never expires.", "", 6.5, 3)
		// The mark: a person at the kiosk must know a badge alone will
		// not do, and so must whoever finds it.
		y := pdf.GetY() + 1.5
		pdf.SetDrawColor(180, 35, 24)
		pdf.SetFillColor(254, 243, 242)
		pdf.SetLineWidth(0.5)
		pdf.RoundedRect(tx, y, tw, 8.5, 1.2, "1234", "FD")
		pdf.SetTextColor(180, 35, 24)
		pdf.SetFont("Helvetica", "B", 7)
		pdf.SetXY(tx, y+0.8)
		pdf.CellFormat(tw, 3.4, "REQUIRES A", "", 2, "C", false, 0, "")
		pdf.CellFormat(tw, 3.4, "SECOND FACTOR", "", 2, "C", false, 0, "")
	} else {
		para("Secure badge", "B", 7.5, 3.6)
		para("Replaces username and password.", "", 6.5, 3)
		exp := "Valid until the password changes"
		if !card.Expires.IsZero() {
			// ExpiresAt is the first instant it no longer works.
			exp = "Valid until " + card.Expires.Add(-time.Second).UTC().Format("2 Jan 2006")
		}
		pdf.SetXY(tx, pdf.GetY()+0.8)
		para(exp, "B", 6.5, 3)
	}

	pdf.SetTextColor(110, 110, 110)
	pdf.SetFont("Helvetica", "", 5.5)
	pdf.SetXY(tx, h-12.5)
	pdf.CellFormat(tw, 2.6, tr(card.Service), "", 2, "L", false, 0, "")
	pdf.CellFormat(tw, 2.6, "Issued "+card.Issued.UTC().Format("2 Jan 2006"), "", 2, "L", false, 0, "")
	pdf.CellFormat(tw, 2.6, string(card.ID), "", 2, "L", false, 0, "")

	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
