package server_test

import (
	"strings"
	"testing"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/server"
)

func FuzzDecodeTicketRequest(f *testing.F) {
	f.Add([]byte(`{"ticket":"` + strings.Repeat("A", 43) + `"}`))
	f.Add([]byte(`{"ticket":""}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := server.DecodeTicketRequest(data)
		if err != nil {
			if qrauth.ErrorCode(err) != qrauth.EINVALID {
				t.Fatalf("code %s", qrauth.ErrorCode(err))
			}
			return
		}
		if len(r.Ticket) != 43 {
			t.Fatalf("accepted ticket %q", r.Ticket)
		}
	})
}
