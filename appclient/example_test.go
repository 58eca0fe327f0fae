package appclient_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/wire"
)

// A code shown by another site is refused before anything is sent: it
// could be relaying someone else's login (QRLJacking).
func ExampleParseQRURL() {
	psk, err := appclient.ParseQRURL("https://login.example.com", "https://login.example.com/q/Xk3pR9vQm2LwT8yZa1BcDe")
	fmt.Println(psk, err)

	_, err = appclient.ParseQRURL("https://login.example.com", "https://login.example.net/q/Xk3pR9vQm2LwT8yZa1BcDe")
	fmt.Println(qrauth.ErrorReason(err))
	// Output:
	// Xk3pR9vQm2LwT8yZa1BcDe <nil>
	// foreign_origin
}

// Create the device once and keep it; its key is the phone's credential.
func ExampleInit() {
	ctx := context.Background()
	d, err := appclient.Init(ctx, appclient.InitOptions{
		Server: "https://login.example.com",
		Phone:  "+41 79 123 45 67",
		Name:   "Pixel 8",
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := d.Save("device.json"); err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.ID(), d.PhoneIDHash)
}

// Scan a code from a picture, show the person who asks, and approve.
func ExampleDevice_Scan() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := appclient.Load("device.json")
	if err != nil {
		log.Fatal(err)
	}
	f, err := os.Open("qr.png")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	url, err := appclient.DecodeQRImage(f)
	if err != nil {
		log.Fatal(err)
	}

	scan, err := d.Scan(ctx, url, appclient.ScanOptions{})
	if err != nil {
		log.Fatal(err) // such as foreign_origin, or the server's unknown code
	}
	defer scan.Close()
	ch := scan.Challenge
	fmt.Printf("%s from %s (%s) on %s, %s\n", ch.Mode, ch.Context.IP, ch.Context.Place, ch.Context.Browser, ch.Context.OS)
	if ch.Proximity != nil && ch.Proximity.Warning != "" {
		fmt.Println("WARNING:", ch.Proximity.Warning)
	}

	done, err := scan.Approve(ctx, appclient.ApproveOptions{})
	if err != nil {
		log.Fatal(err)
	}
	if done.Type == wire.MsgNeedsForm { // sign-up: the browser fills in the form
		if done, err = scan.Wait(ctx); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(done.Result)
}

// At sign-up, the phone can fill in the optional form itself.
func ExampleScan_Approve_signUp() {
	ctx := context.Background()
	d, err := appclient.Load("device.json")
	if err != nil {
		log.Fatal(err)
	}
	scan, err := d.Scan(ctx, "https://login.example.com/q/Xk3pR9vQm2LwT8yZa1BcDe", appclient.ScanOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer scan.Close()
	if scan.Challenge.Mode != wire.ModeSignUp {
		log.Fatal("not a sign-up")
	}
	done, err := scan.Approve(ctx, appclient.ApproveOptions{
		Profile: &qrauth.Profile{Name: "Alice", Email: "alice@example.com"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(done.Result, done.UserID)
}

// List the account's browsers and end one.
func ExampleDevice_Sessions() {
	ctx := context.Background()
	d, err := appclient.Load("device.json")
	if err != nil {
		log.Fatal(err)
	}
	sessions, err := d.Sessions(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range sessions {
		fmt.Println(s.ID, s.IP, s.Browser, s.OS, s.LastSeenAt.Format(time.DateTime))
	}
	if len(sessions) > 0 {
		if err := d.RevokeSession(ctx, sessions[0].ID); err != nil {
			log.Fatal(err)
		}
	}
}

// A new phone, after the old one was lost: set it up, then link it with
// one of the person's recovery codes (or a helpdesk's link code, or the
// URL its QR code holds). Every browser signed in to the account is
// signed out; the phone then signs in by scanning, as any linked phone.
func ExampleDevice_Recover() {
	ctx := context.Background()
	d, err := appclient.Init(ctx, appclient.InitOptions{Server: "https://login.example.com", Phone: "+41 79 123 45 67", Name: "Pixel 9"})
	if err != nil {
		log.Fatal(err)
	}
	if err := d.Save("device.json"); err != nil {
		log.Fatal(err)
	}
	r, err := d.Recover(ctx, "7K3M-QX9D-2HJW-N5TA")
	if err != nil {
		log.Fatal(err) // such as bad_recovery_code, link_code_expired, recovery_locked
	}
	fmt.Printf("linked to %s; %d browsers signed out; %d codes left\n", r.Account.Name, r.SessionsEnded, r.Remaining)
}

// RecoveryCode reads a typed code as the server does, and takes a
// helpdesk's QR code only from the device's own origin.
func ExampleDevice_RecoveryCode() {
	d := &appclient.Device{Origin: "https://login.example.com"}
	fmt.Println(d.RecoveryCode("7k3m qx9d-2hjw-n5ta"))
	fmt.Println(d.RecoveryCode("https://login.example.com/app#recover=7K3M-QX9D-2HJW-N5TA"))
	_, err := d.RecoveryCode("https://login.example.net/app#recover=7K3M-QX9D-2HJW-N5TA")
	fmt.Println(qrauth.ErrorReason(err))
	// Output:
	// 7K3MQX9D2HJWN5TA <nil>
	// 7K3MQX9D2HJWN5TA <nil>
	// foreign_origin
}
