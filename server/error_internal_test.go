package server

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/wire"
)

// TestAbandonedRequestIsNotAnError: a client that hangs up mid-request makes
// the store refuse with a cancelled context; that is the client's doing and
// is logged at info. A real internal failure stays an error.
func TestAbandonedRequestIsNotAnError(t *testing.T) {
	var logs bytes.Buffer
	s := &Server{cfg: Config{Metrics: nopMetrics{}}, log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	e := echo.New()

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequest("GET", wire.PathMe, nil).WithContext(ctx)
	s.handleError(qrauth.Internal(context.Canceled), e.NewContext(req, httptest.NewRecorder()))
	if out := logs.String(); strings.Contains(out, "level=ERROR") || !strings.Contains(out, "request abandoned") {
		t.Fatalf("hang-up logged as:\n%s", out)
	}

	logs.Reset()
	req = httptest.NewRequest("GET", wire.PathMe, nil)
	s.handleError(qrauth.Internal(context.Canceled), e.NewContext(req, httptest.NewRecorder()))
	if !strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("a cancellation the client did not cause is ours:\n%s", logs.String())
	}
}
