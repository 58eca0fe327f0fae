package wire_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/wire"
)

// TestCheckJSONText: bytes that are not UTF-8, and \u escapes of lone
// surrogates, are refused; everything else that is text passes.
func TestCheckJSONText(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		ok         bool
	}{
		{"ASCII", `{"name":"Ada"}`, true},
		{"UTF8", `{"name":"Zoë 😀"}`, true},
		{"EscapedPair", `{"name":"\ud83d\ude00"}`, true},
		{"EscapedBMP", `{"name":"\u00e9\uFFFD"}`, true},
		{"EscapedBackslashU", `{"name":"\\ud800"}`, true}, // a backslash, then the letters
		{"RawFFFE", "{\"name\":\"\xff\xfe\"}", false},
		{"Truncated", "{\"name\":\"\xe2\x82\"}", false},
		{"Overlong", "{\"name\":\"\xc0\xaf\"}", false},
		{"RawSurrogate", "{\"name\":\"\xed\xa0\x80\"}", false},
		{"LoneHigh", `{"name":"\ud800"}`, false},
		{"LoneHighAtEnd", `"\uD800`, false},
		{"LoneLow", `{"name":"\udc00x"}`, false},
		{"HighThenBMP", `{"name":"\ud800\u0041"}`, false},
		{"HighThenHigh", `{"name":"\ud800\ud800"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := wire.CheckJSONText([]byte(tc.text))
			if tc.ok != (err == nil) {
				t.Fatalf("CheckJSONText(%q) = %v", tc.text, err)
			}
			if err != nil && (qrauth.ErrorCode(err) != qrauth.EINVALID || qrauth.ErrorReason(err) != "invalid_utf8") {
				t.Fatalf("err %v", err)
			}
		})
	}
}

// TestFramesRefuseInvalidUTF8: the decoders of both sockets and of the
// transaction decision refuse bad text with invalid_utf8 instead of
// decoding it to U+FFFD.
func TestFramesRefuseInvalidUTF8(t *testing.T) {
	for _, frame := range []string{
		"{\"type\":\"profile\",\"name\":\"\xff\xfe\"}",
		`{"type":"profile","name":"\udcff"}`,
	} {
		if _, err := wire.DecodeBrowserFrame([]byte(frame)); qrauth.ErrorReason(err) != "invalid_utf8" {
			t.Errorf("browser %q: %v", frame, err)
		}
		if _, err := wire.DecodeAppFrame([]byte(frame)); qrauth.ErrorReason(err) != "invalid_utf8" {
			t.Errorf("app %q: %v", frame, err)
		}
	}
	if _, err := wire.DecodeTransactionDecisionRequest([]byte("{\"decision\":\"\xff\"}")); qrauth.ErrorReason(err) != "invalid_utf8" {
		t.Errorf("transaction decision: %v", err)
	}
}

// FuzzCheckJSONText: text CheckJSONText lets through never decodes to a
// replacement character it did not spell out itself; so nothing passes
// that Go's decoder would silently repair.
func FuzzCheckJSONText(f *testing.F) {
	f.Add([]byte(`{"name":"Zoë"}`))
	f.Add([]byte(`{"name":"\ud83d\ude00"}`))
	f.Add([]byte(`{"name":"\ud800"}`))
	f.Add([]byte("{\"name\":\"\xff\"}"))
	f.Add([]byte(`["\\\ud800", "\uFFFD"]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if wire.CheckJSONText(data) != nil {
			return
		}
		var v any
		if json.Unmarshal(data, &v) != nil {
			return
		}
		spelled := bytes.Contains(data, []byte("\uFFFD")) || bytes.Contains(bytes.ToLower(data), []byte(`\ufffd`))
		if !spelled && strings.ContainsRune(mustMarshal(t, v), utf8.RuneError) {
			t.Fatalf("%q passed but decodes to U+FFFD: %v", data, v)
		}
	})
}

func mustMarshal(t *testing.T, v any) string {
	// SetEscapeHTML(false) and no ASCII escaping: json.Marshal writes
	// U+FFFD as itself, so it can be looked for in the output.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
