package appclient

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/wire"
)

// defaultHTTPClient is used when no client is given. Its timeout bounds
// calls whose context has no deadline.
var defaultHTTPClient = &http.Client{Timeout: 30 * time.Second}

// Discover fetches the discovery document of the qrauth server at server
// (an http or https URL, as a person typed it) and checks it: the protocol
// version this package speaks, a bare origin, a phone salt, and an app
// socket that is ws or wss (wss when server is https, so that the socket
// is never weaker than the channel that named it). A nil client means a
// default client with a 30 s timeout.
func Discover(ctx context.Context, client *http.Client, server string) (*wire.Discovery, error) {
	base, err := normalizeServer(server)
	if err != nil {
		return nil, err
	}
	if client == nil {
		client = defaultHTTPClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+wire.PathDiscovery, nil)
	if err != nil {
		return nil, qrauth.Errorf(qrauth.EINVALID, "invalid_server", "The server URL %q is not valid.", server)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, transportError(ctx, base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e := responseError(resp)
		if resp.StatusCode == http.StatusNotFound {
			e.Message = "There is no qrauth server at " + base + "."
			e.Reason = "not_a_qrauth_server"
		}
		return nil, e
	}
	var d wire.Discovery
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseSize)).Decode(&d); err != nil {
		return nil, wrapf(qrauth.EINVALID, "not_a_qrauth_server", err, "There is no qrauth server at %s.", base)
	}
	if err := checkDiscovery(&d, strings.HasPrefix(base, "https:")); err != nil {
		return nil, err
	}
	return &d, nil
}

func checkDiscovery(d *wire.Discovery, secure bool) error {
	bad := func(what string) error {
		return qrauth.Errorf(qrauth.EINVALID, "bad_discovery", "The server's discovery document has an invalid %s.", what)
	}
	if d.ProtocolVersion != wire.ProtocolVersion {
		return qrauth.Errorf(qrauth.EINVALID, "unsupported_protocol",
			"The server speaks protocol version %d; this app speaks version %d.", d.ProtocolVersion, wire.ProtocolVersion)
	}
	origin, ok := normalizeOrigin(d.Origin)
	if !ok {
		return bad("origin")
	}
	d.Origin = origin
	if salt, err := base64.RawURLEncoding.DecodeString(d.PhoneSalt); err != nil || len(salt) == 0 {
		return bad("phone salt")
	}
	u, err := url.Parse(d.AppSocket)
	if err != nil || u.Host == "" || !(u.Scheme == "wss" || u.Scheme == "ws" && !secure) {
		return bad("app socket")
	}
	return nil
}
