package qrauth_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/qrauth/qrauth"
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
		{"SameCodeAndReason", storeWording, qrauth.ErrOATHNotFound, true},
		{"Wrapped", fmt.Errorf("admin: %w", storeWording), qrauth.ErrOATHNotFound, true},
		{"OtherReason", qrauth.Errorf(qrauth.ENOTFOUND, "user_not_found", "x"), qrauth.ErrOATHNotFound, false},
		{"OtherCode", qrauth.Errorf(qrauth.EINVALID, "oath_not_found", "x"), qrauth.ErrOATHNotFound, false},
		{"CodeOnlyTarget", storeWording, &qrauth.Error{Code: qrauth.ENOTFOUND}, true},
		{"NotAnError", errors.New("oath_not_found"), qrauth.ErrOATHNotFound, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := errors.Is(tc.err, tc.target); got != tc.want {
				t.Fatalf("errors.Is(%v, %v) = %v, want %v", tc.err, tc.target, got, tc.want)
			}
		})
	}
}
