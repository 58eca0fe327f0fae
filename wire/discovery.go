package wire

// Discovery is the document served at /.well-known/qrauth for apps.
type Discovery struct {
	ProtocolVersion int    `json:"protocol_version"`
	Origin          string `json:"origin"`
	PhoneSalt       string `json:"phone_salt"` // base64url; key of PhoneIDHash
	QRPrefix        string `json:"qr_prefix"`  // ORIGIN/q/
	AppSocket       string `json:"app_socket"` // ws(s) URL
	SessionsURL     string `json:"sessions_url"`
}
