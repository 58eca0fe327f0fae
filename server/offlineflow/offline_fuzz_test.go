package offlineflow_test

import (
	"testing"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/offline"
	"github.com/qrauth/qrauth/server/offlineflow"
)

// FuzzDecodeOfflineBeginRequest: whatever a relying site posts, the begin
// decoder refuses with EINVALID or returns a request that names the user
// one way, a known method and a context that fits the QR budget.
func FuzzDecodeOfflineBeginRequest(f *testing.F) {
	f.Add([]byte(`{"user_id":"u_1","method":"OFFLINE_PIN","context":"Pay CHF 10"}`))
	f.Add([]byte(`{"email":"a@example.com","device_id":"d_AAAAAAAAAAAAAAAAAAAAAA","method":"pin","context":""}`))
	f.Add([]byte(`{"user_id":"u_1","method":"OFFLINE_DEVICE","context":"\u202e"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, m, err := offlineflow.DecodeOfflineBeginRequest(data)
		if err != nil {
			if qrauth.ErrorCode(err) != qrauth.EINVALID {
				t.Fatalf("code %s", qrauth.ErrorCode(err))
			}
			return
		}
		if (r.UserID == "") == (r.Email == "") || !offline.ValidMethod(m) || len(r.Context) > offline.ContextLimit(r.Context) ||
			offline.CheckContext(r.Context) != nil || (r.DeviceID != "" && !qrauth.ValidDeviceID(r.DeviceID)) {
			t.Fatalf("accepted %+v %s", r, m)
		}
	})
}

// FuzzDecodeApprovalRequest: the same for the online approval request.
func FuzzDecodeApprovalRequest(f *testing.F) {
	f.Add([]byte(`{"user_id":"u_1","text":"Pay CHF 10\nto Bob"}`))
	f.Add([]byte(`{"email":"a@example.com","text":""}`))
	f.Add([]byte(`{"user_id":"u_1","text":"\u0000"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := offlineflow.DecodeApprovalRequest(data)
		if err != nil {
			if qrauth.ErrorCode(err) != qrauth.EINVALID {
				t.Fatalf("code %s", qrauth.ErrorCode(err))
			}
			return
		}
		if (r.UserID == "") == (r.Email == "") || offline.CheckApprovalText(r.Text) != nil {
			t.Fatalf("accepted %+v", r)
		}
	})
}
