package qrauth_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/oath"
)

// TestErrorIs: a sentinel matches any error of its code and reason,
// whatever its message or wrapping, and nothing else.
func TestErrorIs(t *testing.T) {
	storeWording := qrauth.Errorf(qrauth.ENOTFOUND, "oath_not_found", "This user has no active authenticator.")
	for _, tc := range []struct {
		name   string
		err    error
		target error
		want   bool
	}{
		{"SameCodeAndReason", storeWording, oath.ErrNotFound, true},
		{"Wrapped", fmt.Errorf("admin: %w", storeWording), oath.ErrNotFound, true},
		{"OtherReason", qrauth.Errorf(qrauth.ENOTFOUND, "user_not_found", "x"), oath.ErrNotFound, false},
		{"OtherCode", qrauth.Errorf(qrauth.EINVALID, "oath_not_found", "x"), oath.ErrNotFound, false},
		{"CodeOnlyTarget", storeWording, &qrauth.Error{Code: qrauth.ENOTFOUND}, true},
		{"NotAnError", errors.New("oath_not_found"), oath.ErrNotFound, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := errors.Is(tc.err, tc.target); got != tc.want {
				t.Fatalf("errors.Is(%v, %v) = %v, want %v", tc.err, tc.target, got, tc.want)
			}
		})
	}
}
