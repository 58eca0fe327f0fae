package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/offline"
	"github.com/qrauth/qrauth/wire"
)

type adminOfflineMethod struct {
	DeviceID          qrauth.DeviceID `json:"device_id"`
	DeviceName        string          `json:"device_name"`
	Method            offline.Method  `json:"method"`
	Locked            bool            `json:"locked"`
	Failures          int             `json:"failures"`
	RemainingAttempts int             `json:"remaining_attempts"`
	ActivatedAt       time.Time       `json:"activated_at"`
	LastUsedAt        time.Time       `json:"last_used_at"`
}

func adminOffline(ctx context.Context, cl *adminClient, args []string, out io.Writer) error {
	if len(args) != 1 {
		return errUsage
	}
	var v struct {
		Methods []adminOfflineMethod `json:"methods"`
	}
	if err := cl.do(ctx, "GET", wire.Path(wire.PathAdminOfflineUser, args[0]), nil, &v); err != nil {
		return err
	}
	if len(v.Methods) == 0 {
		fmt.Fprintln(out, "No offline methods.")
		return nil
	}
	tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tNAME\tMETHOD\tSTATE\tWRONG CODES\tACTIVATED\tLAST USED")
	for _, m := range v.Methods {
		state := "active"
		if m.Locked {
			state = "LOCKED"
		}
		used := "never"
		if !m.LastUsedAt.IsZero() {
			used = m.LastUsedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", m.DeviceID, m.DeviceName, m.Method, state, m.Failures,
			m.ActivatedAt.Format(time.RFC3339), used)
	}
	return tw.Flush()
}

func adminOfflineUnlock(ctx context.Context, cl *adminClient, args []string, out io.Writer) error {
	if len(args) != 3 {
		return errUsage
	}
	m, err := offline.ParseMethod(args[2])
	if err != nil {
		return err
	}
	var v struct {
		Method adminOfflineMethod `json:"method"`
	}
	if err := cl.do(ctx, "POST", wire.Path(wire.PathAdminOfflineUserUnlock, args[0]),
		map[string]any{"device_id": args[1], "method": m}, &v); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s of %s unlocked; %d attempts left.\n", m, args[1], v.Method.RemainingAttempts)
	return nil
}
