package wire_test

import (
	"crypto/ed25519"
	"fmt"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/wire"
)

// exampleKey is the key of the worked examples of docs/protocol.md §5: the
// seed 01 02 … 20.
func exampleKey() ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i + 1)
	}
	return ed25519.NewKeyFromSeed(seed)
}

// The decision of docs/protocol.md §9.1: the exact bytes a phone signs to
// approve a sign-in, and their signature.
func ExampleDecision_SignedBytes() {
	priv := exampleKey()
	d := wire.Decision{
		Origin:      "https://login.example.com",
		Room:        "EBESExQVFhcYGRobHB0eHw",
		Nonce:       "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8",
		Mode:        wire.ModeLogin,
		DeviceID:    qrauth.DeviceIDFromKey(priv.Public().(ed25519.PublicKey)),
		PhoneIDHash: "73913b6509ff7e465e4329d705195340fa781798ab404034fa9272cea3a93edd",
		Decision:    wire.DecisionApprove,
	}
	fmt.Printf("%s", d.SignedBytes())
	fmt.Println(d.Sign(priv))
	// Output:
	// qrauth-v1 decision
	// origin=https://login.example.com
	// room=EBESExQVFhcYGRobHB0eHw
	// nonce=QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8
	// mode=login
	// device=d_ZbYGc9btiEvwHCwiLYKtoA
	// phone=73913b6509ff7e465e4329d705195340fa781798ab404034fa9272cea3a93edd
	// decision=approve
	// yoSRkS8FgR-25r7-DrF2-na_RYDXoKn0NNYUYJUetZhYgigjUz0c8oSoS2sfbSPVpUJ1n1AuXgurzp_n7YhGAw
}

// The signed join of docs/protocol.md §9.3: only the SHA-256 of the PSK is
// signed.
func ExampleJoin_SignedBytes() {
	priv := exampleKey()
	j := wire.Join{
		Origin:      "https://login.example.com",
		PSK:         "aJo_KCwHYlaGRwkyU-OiXw",
		DeviceID:    qrauth.DeviceIDFromKey(priv.Public().(ed25519.PublicKey)),
		PhoneIDHash: "73913b6509ff7e465e4329d705195340fa781798ab404034fa9272cea3a93edd",
	}
	fmt.Printf("%s", j.SignedBytes())
	fmt.Println(j.Sign(priv))
	// Output:
	// qrauth-v2 join
	// origin=https://login.example.com
	// psk-sha256=417eed2327d5b17ba23249297bc8af97550877a637a14eef6f91568b36c8d905
	// device=d_ZbYGc9btiEvwHCwiLYKtoA
	// phone=73913b6509ff7e465e4329d705195340fa781798ab404034fa9272cea3a93edd
	// uPFx5A4okD1CNQbCYvSAbq_gUl-tKiXquN__SCA6d9D-lDNqc6lLLEcKgoRHXhgA0Dx06UKuU5a2cNFys0D6CA
}

// The device-signed request of docs/protocol.md §9.2: revoking a session,
// with the headers that carry the signature.
func ExampleAppRequest_SignedBytes() {
	priv := exampleKey()
	r := wire.AppRequest{
		Method:   "DELETE",
		Path:     wire.Path(wire.PathAppSessionByID, "s_AAECAwQFBgcICQoLDA0ODw"),
		Time:     1767225600,
		Nonce:    "cHFyc3R1dnd4eXp7fH1-fw",
		DeviceID: qrauth.DeviceIDFromKey(priv.Public().(ed25519.PublicKey)),
	}
	fmt.Printf("%s", r.SignedBytes())
	fmt.Printf("%s: %s\n", wire.HeaderSignature, r.Sign(priv))
	// Output:
	// qrauth-v1 request
	// method=DELETE
	// path=/api/app/sessions/s_AAECAwQFBgcICQoLDA0ODw
	// time=1767225600
	// nonce=cHFyc3R1dnd4eXp7fH1-fw
	// device=d_ZbYGc9btiEvwHCwiLYKtoA
	// X-Qrauth-Signature: qxzTyESDZjWNhQw0TFQc1hwDDy4YmYI-La80zyiu_NyM2BjfsJA_F-lzZTiTDNYPMp17xZSmc2w7lGWHcojrBQ
}
