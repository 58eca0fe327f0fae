package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/badge"
	"github.com/qrauth/qrauth/oath"
	"github.com/qrauth/qrauth/offline"
	"github.com/qrauth/qrauth/oidc"
	"github.com/qrauth/qrauth/recovery"
	"github.com/qrauth/qrauth/wire"
)

// FullStore is every store interface at once, as each real store
// implements them.
type FullStore interface {
	qrauth.Store
	badge.Store
	oath.Store
	offline.Store
	oidc.Store
	recovery.Store
}

// FillAccount gives user name a phone, a session, and a record in every
// flow, and returns the strings that name them: the ids and the phone hash.
func FillAccount(t *testing.T, db FullStore, name string, n byte) []string {
	t.Helper()
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Second)
	uid := qrauth.UserID("u_" + name)
	did := qrauth.DeviceID("d_" + name)
	phone := qrauth.PhoneIDHash([]byte("salt"), name)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.CreateUser(ctx, &qrauth.User{ID: uid, Name: name, PhoneIDHash: phone, CreatedAt: now},
		&qrauth.Device{ID: did, UserID: uid, Name: "phone", PublicKey: bytes.Repeat([]byte{n}, 32), PhoneIDHash: phone, CreatedAt: now},
		&qrauth.AuditEvent{Time: now, Type: qrauth.AuditSignUp, UserID: uid, DeviceID: did, IP: "192.0.2.1"}))
	sid := qrauth.SessionID("s_" + name)
	must(db.CreateSession(ctx, &qrauth.Session{ID: sid, UserID: uid, TokenHash: qrauth.HashToken("tok-" + name),
		DeviceID: did, IP: "192.0.2.1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
		&qrauth.AuditEvent{Time: now, Type: qrauth.AuditSignIn, UserID: uid, SessionID: sid, IP: "192.0.2.1"}))
	must(db.PutOIDCSessionInfo(ctx, &oidc.SessionInfo{SessionID: string(sid), AMR: []string{"hwk"}, AuthTime: now, ExpiresAt: now.Add(time.Hour)}))

	must(db.PutOfflineCredential(ctx, &offline.Credential{UserID: uid, DeviceID: did, Method: offline.PIN,
		SealedKey: []byte("sealed"), KeyID: "k_" + name, ActivatedAt: now}))
	must(db.CreateOfflineSession(ctx, &offline.Session{ID: "o_" + name, Purpose: offline.ForAPI, UserID: uid, DeviceID: did,
		Method: offline.PIN, KeyID: "k_" + name, VerificationData: "1D6AAAAAAAAAAAcontext", State: offline.Pending,
		CreatedAt: now, ExpiresAt: now.Add(time.Minute)}))
	must(db.CreateApproval(ctx, &offline.Approval{ID: "a_" + name, UserID: uid, Text: "Pay", TextSHA256: wire.TextSHA256("Pay"),
		TokenHash: qrauth.HashToken("ap-" + name), ViewTokenHash: qrauth.HashToken("view-" + name),
		State: offline.ApprovalPending, CreatedAt: now, ExpiresAt: now.Add(time.Minute)}))
	_, err := db.PutOATHPending(ctx, uid, &oath.Token{ID: "t_" + name, Kind: oath.TOTP, Algorithm: oath.SHA1, Digits: 6,
		Period: 30, Secret: []byte("sealed"), Source: oath.SourceAccount, CreatedAt: now})
	must(err)
	must(db.SetPassword(ctx, &badge.Password{UserID: uid, Algorithm: badge.PasswordAlgorithm,
		Params: badge.PasswordParams{Time: 1, Memory: 64, Threads: 1, KeyLen: 32},
		Salt:   bytes.Repeat([]byte{n}, 16), Hash: bytes.Repeat([]byte{n}, 32), Stamp: bytes.Repeat([]byte{n}, 32), SetAt: now}, nil))
	bid := badge.IDFromBytes(bytes.Repeat([]byte{n}, 16))
	must(db.CreateBadge(ctx, &badge.Badge{ID: bid, UserID: uid, Kind: badge.Insecure, CreatedBy: "operator", CreatedAt: now}))

	must(db.CreateOIDCAuthRequest(ctx, &oidc.AuthRequest{ID: "r_" + name, ClientID: "wiki", RedirectURI: "https://wiki.example/cb",
		Scopes: []string{"openid"}, ResponseType: "code", CreatedAt: now, ExpiresAt: now.Add(time.Minute),
		UserID: string(uid), SessionID: string(sid), CodeHash: oidc.Hash("code-" + name)}))
	must(db.CreateOIDCTokens(ctx,
		&oidc.Token{ID: "at_" + name, Kind: oidc.KindAccess, GrantID: "g_" + name, ClientID: "wiki", UserID: string(uid), CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
		&oidc.Token{ID: "rt_" + name, Kind: oidc.KindRefresh, Hash: oidc.Hash("refresh-" + name), GrantID: "g_" + name, ClientID: "wiki",
			UserID: string(uid), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))
	must(db.PutOIDCConsent(ctx, &oidc.Consent{UserID: string(uid), ClientID: "wiki", Scopes: []string{"profile"}}))
	_, err = db.ReplaceRecoveryCodes(ctx, uid, [][]byte{bytes.Repeat([]byte{n}, recovery.HashLen)}, now)
	must(err)
	must(db.CreateLinkCode(ctx, &recovery.LinkCode{Hash: bytes.Repeat([]byte{n + 100}, recovery.HashLen), UserID: uid,
		IssuedBy: "operator", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}))
	return []string{string(uid), string(did), phone, string(sid), "o_" + name, "a_" + name, "t_" + name, string(bid),
		"r_" + name, "at_" + name, "rt_" + name, "g_" + name}
}
