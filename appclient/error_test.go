package appclient_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
)

// Before: a phone set up under http:// whose server moved to https:// on
// the same address got "The server refused the request as malformed.
// [http_400]".
func TestHTTPToHTTPSServerSaysSo(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	plain := "http://" + strings.TrimPrefix(srv.URL, "https://")
	_, err := appclient.Discover(context.Background(), nil, plain)
	wantError(t, err, qrauth.EINVALID, "https_required")
	if msg := qrauth.ErrorMessage(err); !strings.Contains(msg, srv.URL) || !strings.Contains(msg, "only over HTTPS") || !strings.Contains(msg, plain) {
		t.Errorf("message %q does not say to use %s", msg, srv.URL)
	}
}

// Before: a certificate the phone does not trust read as "Cannot reach the
// qrauth server".
func TestUntrustedCertificateSaysSo(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	_, err := appclient.Discover(context.Background(), nil, srv.URL)
	wantError(t, err, qrauth.EUNAUTHORIZED, "certificate_untrusted")
	if msg := qrauth.ErrorMessage(err); !strings.Contains(msg, "SSL_CERT_FILE") {
		t.Errorf("message %q does not say what to do", msg)
	}
	// A certificate for another name.
	_, err = appclient.Discover(context.Background(), nil, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1))
	if r := qrauth.ErrorReason(err); r != "certificate_untrusted" && r != "certificate_name_mismatch" {
		t.Errorf("localhost: %v", err)
	}
}

func TestHTTPSToHTTPServerSaysSo(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	_, err := appclient.Discover(context.Background(), nil, "https://"+strings.TrimPrefix(srv.URL, "http://"))
	wantError(t, err, qrauth.EINVALID, "not_https")
}

func TestForbiddenIsForbidden(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "go away", http.StatusForbidden)
	}))
	defer srv.Close()
	_, err := appclient.Discover(context.Background(), nil, srv.URL)
	if qrauth.ErrorCode(err) != qrauth.EFORBIDDEN {
		t.Fatalf("403 gave %v", err)
	}
}
