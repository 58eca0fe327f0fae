package qrimage

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"sync"

	"rsc.io/qr"
	"rsc.io/qr/coding"
)

// The login QR code is rendered on every PSK rotation of every waiting
// room, so it sits on the hot path: 19,000 waiting rooms rotate about 630
// codes a second. skip2/go-qrcode (used for the printed codes elsewhere)
// took 0.9 ms to encode one code and 1.4 ms more to draw its PNG, about one
// CPU core for rotations alone. rsc.io/qr encodes the same code in ~70 µs
// and PNG writes a 1-bit PNG directly (see docs/benchmarks.md).

// ModulePixels is the size of one QR module in the PNG. The page scales
// the image up with crisp edges, so a small PNG keeps every rotation message
// small while staying easy for any camera and decoder.
const ModulePixels = 3

// QuietZone is the blank border, in modules, that readers need.
const QuietZone = 4

// DataURL returns a PNG data URL of a QR code of s at error correction M.
func DataURL(s string) (string, error) {
	code, err := Encode(s)
	if err != nil {
		return "", err
	}
	png, err := PNG(code, ModulePixels)
	if err != nil {
		return "", err
	}
	const prefix = "data:image/png;base64,"
	out := make([]byte, len(prefix)+base64.StdEncoding.EncodedLen(len(png)))
	copy(out, prefix)
	base64.StdEncoding.Encode(out[len(prefix):], png)
	return string(out), nil
}

// Encode encodes s at level M in the smallest version that holds it.
// Plain ASCII goes as rsc.io/qr chooses (the login URLs). Anything else is
// one byte-mode segment behind a UTF-8 ECI designator: without it a QR
// reader must guess the character set of byte mode (ISO 8859-1 by the
// standard, Shift-JIS or UTF-8 by heuristics), and zbar, for one, misreads
// UTF-8 transaction texts as Shift-JIS. rsc.io/qr has no ECI segment, so
// eciUTF8 adds one through its coding package.
func Encode(s string) (*qr.Code, error) {
	ascii := true
	for i := 0; i < len(s); i++ {
		ascii = ascii && s[i] < 0x80
	}
	if ascii {
		return qr.Encode(s, qr.M)
	}
	segs := []coding.Encoding{eciUTF8{}, coding.String(s)}
	for v := coding.Version(coding.MinVersion); v <= coding.MaxVersion; v++ {
		bits := 0
		for _, seg := range segs {
			bits += seg.Bits(v)
		}
		if bits > v.DataBytes(coding.M)*8 {
			continue
		}
		p, err := coding.NewPlan(v, coding.M, 0)
		if err != nil {
			return nil, err
		}
		cc, err := p.Encode(segs...)
		if err != nil {
			return nil, err
		}
		return &qr.Code{Bitmap: cc.Bitmap, Size: cc.Size, Stride: cc.Stride, Scale: 8}, nil
	}
	return nil, errors.New("text too long to encode as QR")
}

// eciUTF8 is an ECI segment (ISO/IEC 18004:2015 §7.4.2) that declares
// the byte-mode data after it UTF-8: mode indicator 0111, then the
// designator 000026 in its one-byte form 0bbbbbbb. 12 bits in every version.
type eciUTF8 struct{}

func (eciUTF8) Check() error            { return nil }
func (eciUTF8) Bits(coding.Version) int { return 4 + 8 }
func (eciUTF8) Encode(b *coding.Bits, _ coding.Version) {
	b.Write(0b0111, 4)
	b.Write(26, 8)
}

// PNG draws code as a 1-bit grayscale PNG with a quiet zone, scale
// pixels per module. It writes the PNG by hand: image/png spends most of
// its time asking a generic image for each pixel's colour, where here the
// rows are simply bits.
func PNG(code *qr.Code, scale int) ([]byte, error) {
	n := (code.Size + 2*QuietZone) * scale
	stride := (n + 7) / 8
	raw := make([]byte, (1+stride)*n) // each row: filter byte 0, then bits
	// 1 bit per pixel, 1 = white: start all white, then clear the dark ones.
	for y := 0; y < n; y++ {
		row := raw[y*(1+stride)+1 : (y+1)*(1+stride)]
		for i := range row {
			row[i] = 0xff
		}
	}
	for y := 0; y < code.Size; y++ {
		for x := 0; x < code.Size; x++ {
			if !code.Black(x, y) {
				continue
			}
			x0, y0 := (x+QuietZone)*scale, (y+QuietZone)*scale
			for dy := 0; dy < scale; dy++ {
				row := raw[(y0+dy)*(1+stride)+1:]
				for px := x0; px < x0+scale; px++ {
					row[px>>3] &^= 0x80 >> (px & 7)
				}
			}
		}
	}
	var idat bytes.Buffer
	zw, _ := zlibPool.Get().(*zlib.Writer)
	if zw == nil {
		var err error
		if zw, err = zlib.NewWriterLevel(&idat, zlib.BestSpeed); err != nil {
			return nil, err
		}
	} else {
		zw.Reset(&idat)
	}
	zw.Write(raw)
	err := zw.Close()
	zlibPool.Put(zw)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(n))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(n))
	ihdr[8], ihdr[9] = 1, 0 // bit depth 1, grayscale; compression, filter, interlace 0
	pngChunk(&out, "IHDR", ihdr)
	pngChunk(&out, "IDAT", idat.Bytes())
	pngChunk(&out, "IEND", nil)
	return out.Bytes(), nil
}

// zlibPool keeps compressors: each holds about a megabyte of state, far
// more than the image it compresses.
var zlibPool sync.Pool

func pngChunk(w *bytes.Buffer, typ string, data []byte) {
	var hdr [8]byte
	binary.BigEndian.PutUint32(hdr[:4], uint32(len(data)))
	copy(hdr[4:], typ)
	w.Write(hdr[:])
	w.Write(data)
	crc := crc32.NewIEEE()
	crc.Write(hdr[4:])
	crc.Write(data)
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc.Sum32())
	w.Write(sum[:])
}
