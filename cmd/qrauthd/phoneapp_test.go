package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/qrauth/qrauth"
	"github.com/qrauth/qrauth/appclient"
	"github.com/qrauth/qrauth/offline"
	"github.com/qrauth/qrauth/wire"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/blake2b"
	"golang.org/x/oauth2"
)

// The phone web app (/app) in headless Chromium: a desktop context shows
// the login page; a phone context (390×844, touch) runs the app, its camera
// fed by Chromium's fake capture device from a y4m made with ffmpeg from the
// very PNG the login page shows.

// runPhoneAppMain runs qrauthd like MustRunMain, with codes that live long
// enough for a loaded CI machine to start a camera (the rotation itself is
// tested elsewhere).
func runPhoneAppMain(t *testing.T) *Main {
	t.Helper()
	m := NewMain()
	if err := m.ParseFlags([]string{"-addr", "127.0.0.1:0", "-data", filepath.Join(t.TempDir(), "qrauth.db"),
		"-room-rate", "1000", "-room-burst", "1000", "-psk-rotation", "2m", "-room-ttl", "3m"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	m.LogOutput = io.Discard
	if err := m.Run(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// writeCameraFile turns a QR PNG into the y4m that the fake camera plays:
// the code scaled 3× with hard edges, centred in a 640×480 frame, as a
// phone held in front of the screen would see it.
func writeCameraFile(t *testing.T, png []byte, path string) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg not on the PATH: install it (apt-get install ffmpeg)")
	}
	in := path + ".png"
	if err := os.WriteFile(in, png, 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := path + ".tmp.y4m"
	cmd := exec.Command("ffmpeg", "-loglevel", "error", "-y", "-loop", "1", "-i", in, "-t", "1", "-r", "10",
		"-vf", "scale=iw*3:ih*3:flags=neighbor,pad=640:480:(ow-iw)/2:(oh-ih)/2:color=white,format=yuv420p",
		"-f", "yuv4mpegpipe", tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	// Rename, so that the camera never opens a half-written file.
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// newPhone starts a Chromium with the fake camera playing cameraFile and
// emulates a 390×844 phone with touch.
func newPhone(t *testing.T, cameraFile string, extra ...chromedp.ExecAllocatorOption) (context.Context, func() []string) {
	t.Helper()
	opts := append([]chromedp.ExecAllocatorOption{
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-file-for-fake-video-capture", cameraFile),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	}, extra...)
	ctx, problems := newChromium(t, opts...)
	if err := chromedp.Run(ctx,
		emulation.SetDeviceMetricsOverride(390, 844, 3, true),
		emulation.SetTouchEmulationEnabled(true).WithMaxTouchPoints(5),
	); err != nil {
		t.Fatal(err)
	}
	return ctx, problems
}

func waitScreen(t *testing.T, ctx context.Context, screen string) {
	t.Helper()
	if err := chromedp.Run(ctx, chromedp.WaitVisible(`body[data-screen="`+screen+`"] #screen-`+screen, chromedp.ByQuery)); err != nil {
		var got, text string
		c := context.WithoutCancel(ctx)
		chromedp.Run(c, chromedp.Evaluate(`document.body.dataset.screen`, &got),
			chromedp.Evaluate(`document.querySelector('#result-text') ? document.querySelector('#result-text').textContent : ''`, &text))
		t.Fatalf("waiting for screen %s (app shows %q %q): %v", screen, got, text, err)
	}
}

// evalAsync evaluates a JavaScript expression that yields a promise and
// decodes its value into out.
func evalAsync(t *testing.T, ctx context.Context, js string, out any) {
	t.Helper()
	if err := chromedp.Run(ctx, chromedp.Evaluate(js, out, func(p *runtime.EvaluateParams) *runtime.EvaluateParams {
		return p.WithAwaitPromise(true)
	})); err != nil {
		t.Fatalf("evaluate %.80s: %v", js, err)
	}
}

func discovery(t *testing.T, origin string) map[string]any {
	t.Helper()
	res, err := http.Get(origin + "/.well-known/qrauth")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var d map[string]any
	if err := json.NewDecoder(res.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestPhoneAppFlows: set up the app, sign up from a first scan with the
// camera, sign in a second desktop from a second scan, decline a third
// through /q/PSK opened directly, and open the app again with the server
// gone (from the service worker's cache).
func TestPhoneAppFlows(t *testing.T) {
	m := runPhoneAppMain(t)
	origin := m.Server.Origin()
	camera := filepath.Join(t.TempDir(), "camera.y4m")

	desk, deskProblems := newChromium(t)
	if err := chromedp.Run(desk, chromedp.Navigate(origin+"/")); err != nil {
		t.Fatal(err)
	}
	waitState(t, desk, "waiting")
	writeCameraFile(t, shownQR(t, desk, "#qr"), camera)

	phone, phoneProblems := newPhone(t, camera)

	// /q/PSK in a browser without a key offers to set up; nothing is joined.
	url1, err := appclient.DecodeQRImage(bytes.NewReader(shownQR(t, desk, "#qr")))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Run(phone, chromedp.Navigate(url1),
		chromedp.WaitVisible(`#scan[data-state="nokey"] #open-setup`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	var href string
	if err := chromedp.Run(phone, chromedp.Evaluate(`document.querySelector('#open-setup').getAttribute('href')`, &href)); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(href, "/app#open=") {
		t.Fatalf("set-up link %q", href)
	}

	// Set up.
	if err := chromedp.Run(phone, chromedp.Navigate(origin+"/app")); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "setup")
	saveScreenshot(t, phone, "phone-setup.png")
	if err := chromedp.Run(phone,
		chromedp.SetValue("#setup-country", "CH", chromedp.ByQuery),
		chromedp.SendKeys("#setup-phone", "079 123 45 67", chromedp.ByQuery),
		chromedp.SendKeys("#setup-name", "Pixel 8", chromedp.ByQuery),
		chromedp.Click("#setup-submit", chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "home")

	// The key: private, Ed25519, not extractable; ids as docs/protocol.md.
	var dev struct {
		Extractable  bool   `json:"extractable"`
		Type         string `json:"type"`
		Alg          string `json:"alg"`
		Usages       []string
		ExportFailed bool   `json:"exportFailed"`
		DeviceID     string `json:"deviceId"`
		PhoneIDHash  string `json:"phoneIdHash"`
		Phone        string `json:"phone"`
		PublicKey    string `json:"publicKey"`
	}
	evalAsync(t, phone, `(async () => {
		const k = await import('/static/app/keys.js');
		const d = await k.loadDevice();
		let exportFailed = false;
		try { await crypto.subtle.exportKey('pkcs8', d.privateKey); } catch (e) { exportFailed = true; }
		return {extractable: d.privateKey.extractable, type: d.privateKey.type, alg: d.privateKey.algorithm.name,
			usages: d.privateKey.usages, exportFailed, deviceId: d.deviceId, phoneIdHash: d.phoneIdHash,
			phone: d.phone, publicKey: k.b64url(d.publicKeyRaw)};
	})()`, &dev)
	if dev.Extractable || !dev.ExportFailed || dev.Type != "private" || dev.Alg != "Ed25519" {
		t.Fatalf("device key %+v: want a private, non-extractable Ed25519 key", dev)
	}
	pub, err := base64.RawURLEncoding.DecodeString(dev.PublicKey)
	if err != nil || len(pub) != 32 {
		t.Fatalf("public key %q", dev.PublicKey)
	}
	if want := qrauth.DeviceIDFromKey(pub); string(want) != dev.DeviceID {
		t.Fatalf("DeviceID %s, Go says %s", dev.DeviceID, want)
	}
	salt, err := base64.RawURLEncoding.DecodeString(discovery(t, origin)["phone_salt"].(string))
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, salt)
	mac.Write([]byte("+41791234567"))
	if want := hex.EncodeToString(mac.Sum(nil)); dev.Phone != "+41791234567" || dev.PhoneIDHash != want {
		t.Fatalf("phone %s hash %s, want +41791234567 %s", dev.Phone, dev.PhoneIDHash, want)
	}
	saveScreenshot(t, phone, "phone-home.png")
	var storage string
	if err := chromedp.Run(phone, chromedp.Text("#home-storage", &storage, chromedp.ByQuery)); err != nil || storage == "" {
		t.Fatalf("storage state not shown: %q %v", storage, err)
	}

	// Sign up from the first scan, the profile filled in on the phone.
	if err := chromedp.Run(phone, chromedp.Click("#scan-start", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "approve")
	waitState(t, desk, "scanned")
	var title string
	if err := chromedp.Run(phone, chromedp.Text("#approve-title", &title, chromedp.ByQuery)); err != nil || title != "Create an account?" {
		t.Fatalf("approve title %q %v", title, err)
	}
	assertDecideEqual(t, phone)
	saveScreenshot(t, phone, "phone-signup.png")
	if err := chromedp.Run(phone,
		chromedp.SendKeys("#profile-name", "Ada Lovelace", chromedp.ByQuery),
		chromedp.Click("#approve-yes", chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "result")
	if err := waitSignedIn(desk, "Ada Lovelace"); err != nil {
		t.Fatalf("desktop not signed up: %v", err)
	}

	// A second desktop signs in with a second scan.
	desk2, desk2Problems := newChromium(t)
	if err := chromedp.Run(desk2, chromedp.Navigate(origin+"/")); err != nil {
		t.Fatal(err)
	}
	waitState(t, desk2, "waiting")
	writeCameraFile(t, shownQR(t, desk2, "#qr"), camera)
	if err := chromedp.Run(phone, chromedp.Click("#result-again", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "approve")
	var account, seen string
	if err := chromedp.Run(phone,
		chromedp.Text("#approve-title", &title, chromedp.ByQuery),
		chromedp.Text("#approve-account", &account, chromedp.ByQuery),
		chromedp.Text("#approve-seen", &seen, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	if title != "Sign in?" || !strings.Contains(account, "Ada Lovelace") || !strings.Contains(seen, "signed in from this address before") {
		t.Fatalf("login approval: %q %q %q", title, account, seen)
	}
	// A sign-in to qrauth itself names no relying site.
	var siteHidden bool
	if err := chromedp.Run(phone, chromedp.Evaluate(`document.querySelector('#approve-site').hidden`, &siteHidden)); err != nil || !siteHidden {
		t.Fatalf("a plain sign-in shows a site (hidden %v, %v)", siteHidden, err)
	}
	assertDecideEqual(t, phone)
	saveScreenshot(t, phone, "phone-approve.png")
	if err := chromedp.Run(phone, chromedp.Click("#approve-yes", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "result")
	if err := waitSignedIn(desk2, "Ada Lovelace"); err != nil {
		t.Fatalf("second desktop not signed in: %v", err)
	}

	// Decline, with the code opened as /q/PSK in the phone's browser: it
	// holds a key, so it goes straight to the approval screen. This
	// desktop signs in for a relying site (an OpenID Connect authorization
	// request), which the approval screen names, as text.
	registerClient(t, m, "wiki", "", []string{"http://127.0.0.1:9/callback"}, nil)
	authorize := origin + "/oidc/authorize?" + url.Values{"client_id": {"wiki"}, "response_type": {"code"},
		"scope": {"openid"}, "redirect_uri": {"http://127.0.0.1:9/callback"}, "state": {"s1"},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}.Encode()
	desk3, desk3Problems := newChromium(t)
	if err := chromedp.Run(desk3, chromedp.Navigate(authorize), chromedp.WaitVisible("#login-site", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitState(t, desk3, "waiting")
	url3, err := appclient.DecodeQRImage(bytes.NewReader(shownQR(t, desk3, "#qr")))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Run(phone, chromedp.Navigate(url3)); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "approve")
	var loc string
	if err := chromedp.Run(phone, chromedp.Evaluate(`location.href`, &loc)); err != nil || loc != origin+"/app" {
		t.Fatalf("the code stays in the address bar: %q %v", loc, err)
	}
	waitState(t, desk3, "scanned")
	var site string
	if err := chromedp.Run(phone, chromedp.WaitVisible("#approve-site", chromedp.ByQuery),
		chromedp.Text("#approve-site", &site, chromedp.ByQuery)); err != nil || site != "Sign in to Example <b>Wiki</b>" {
		t.Fatalf("approval screen names the site %q %v", site, err)
	}
	saveScreenshot(t, phone, "phone-approve-site.png")
	if v, err := axeRun(phone); err != nil || len(v) > 0 {
		t.Fatalf("approval screen with a site: %v\n%s", err, strings.Join(v, "\n"))
	}
	if err := chromedp.Run(phone, chromedp.Click("#approve-no", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "result")
	var result string
	if err := chromedp.Run(phone, chromedp.AttributeValue("#screen-result", "data-result", &result, nil, chromedp.ByQuery)); err != nil || result != "denied" {
		t.Fatalf("result %q %v", result, err)
	}
	waitState(t, desk3, "denied")

	// The app shell opens with the server gone, from the service worker.
	evalAsync(t, phone, `navigator.serviceWorker.ready.then(() => true)`, new(bool))
	if err := chromedp.Run(phone, chromedp.Navigate(origin+"/app")); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "home")
	var controlled bool
	evalAsync(t, phone, `Promise.resolve(!!navigator.serviceWorker.controller)`, &controlled)
	if !controlled {
		t.Fatal("the app page is not controlled by its service worker")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Run(phone, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "home")

	for name, p := range map[string]func() []string{"desktop": deskProblems, "desktop 2": desk2Problems, "desktop 3": desk3Problems, "phone": phoneProblems} {
		if got := p(); len(got) > 0 {
			t.Errorf("%s console problems:\n%s", name, strings.Join(got, "\n"))
		}
	}
}

// waitSignedIn waits for the account page of name (the login page
// navigates there after the ticket exchange).
func waitSignedIn(ctx context.Context, name string) error {
	return chromedp.Run(ctx,
		chromedp.WaitVisible(`#user-name`, chromedp.ByQuery),
		chromedp.Poll(`location.pathname === '/account' && document.querySelector('#user-name').textContent === `+strconv.Quote(name), nil),
	)
}

// assertDecideEqual checks that Approve and Decline are equally prominent:
// the same size, side by side.
func assertDecideEqual(t *testing.T, ctx context.Context) {
	t.Helper()
	var sizes []float64
	if err := chromedp.Run(ctx, chromedp.Evaluate(`[...['#approve-yes', '#approve-no']].flatMap(s => {
		const r = document.querySelector(s).getBoundingClientRect(); return [r.width, r.height, r.top]; })`, &sizes)); err != nil {
		t.Fatal(err)
	}
	if len(sizes) != 6 || sizes[0] != sizes[3] || sizes[1] != sizes[4] || sizes[2] != sizes[5] || sizes[1] < 44 {
		t.Fatalf("approve/decline boxes (w, h, top): %v", sizes)
	}
}

// TestPhoneAppWorkedExamples runs the app's own JavaScript against the
// worked examples of docs/protocol.md (§4.1, §4.3, §5, §9.1 and the signed
// join of protocol 2, §9.3), with the example key imported from its seed.
func TestPhoneAppWorkedExamples(t *testing.T) {
	m := MustRunMain(t)
	ctx, problems := newChromium(t)
	if err := chromedp.Run(ctx, chromedp.Navigate(m.Server.Origin()+"/app")); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, ctx, "setup")
	var got map[string]string
	evalAsync(t, ctx, `(async () => {
		const k = await import('/static/app/keys.js');
		const p = await import('/static/app/protocol.js');
		const out = {};
		for (const [i, s] of ['+41 79 123 45 67', '0041 79 123 45 67', '+41.79/123-45-67', '+1 (202) 555-0100', '079 123 45 67', '+41 (0)79 123 45 67', '+41 79 x'].entries()) {
			try { out['phone' + i] = k.normalizePhone(s); } catch (e) { out['phone' + i] = 'error ' + e.reason; }
		}
		out.phoneIdHash = await k.phoneIdHash('oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr8', k.normalizePhone('+41 79 123 45 67'));
		out.deviceId = await k.deviceIdFromPublicKey(k.fromHex('79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664'));
		// The example key: seed 01..20 as PKCS #8 (RFC 8410).
		const seed = k.fromHex('0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20');
		const pkcs8 = new Uint8Array([...k.fromHex('302e020100300506032b657004220420'), ...seed]);
		const key = await crypto.subtle.importKey('pkcs8', pkcs8, {name: 'Ed25519'}, false, ['sign']);
		const ch = {origin: 'https://login.example.com', room: 'EBESExQVFhcYGRobHB0eHw', nonce: 'QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8'};
		const dev = {origin: ch.origin, deviceId: 'd_ZbYGc9btiEvwHCwiLYKtoA', phoneIdHash: out.phoneIdHash, privateKey: key,
			publicKeyRaw: k.fromHex('79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664'), name: 'Pixel 8'};
		out.bytes = new TextDecoder().decode(p.decisionBytes({...ch, mode: 'login', device: dev.deviceId, phone: dev.phoneIdHash, decision: 'approve'}));
		for (const [mode, dec] of [['login', 'approve'], ['login', 'deny'], ['signup', 'approve'], ['link', 'approve']]) {
			const f = await p.decisionFrame(dev, {...ch, mode}, dec);
			out[mode + '/' + dec] = f.signature;
			if (mode === 'signup') out.signupFrame = JSON.stringify(f);
		}
		out.reqDelete = (await p.signedHeaders(dev, 'DELETE', '/api/app/sessions/s_AAECAwQFBgcICQoLDA0ODw', 1767225600, 'cHFyc3R1dnd4eXp7fH1-fw'))['X-Qrauth-Signature'];
		out.reqGet = (await p.signedHeaders(dev, 'GET', '/api/app/sessions', 1767225600, 'cHFyc3R1dnd4eXp7fH1-fw'))['X-Qrauth-Signature'];
		out.reqGetBytes = new TextDecoder().decode(p.requestBytes({method: 'GET', path: '/api/app/sessions', time: 1767225600, nonce: 'cHFyc3R1dnd4eXp7fH1-fw', device: dev.deviceId}));
		const psk = 'aJo_KCwHYlaGRwkyU-OiXw';
		out.join1 = JSON.stringify(await p.joinFrame(dev, {protocol_version: 1}, psk));
		out.join2 = JSON.stringify(await p.joinFrame(dev, {protocol_version: 2}, psk));
		out.join2bytes = new TextDecoder().decode(await p.joinBytes({origin: dev.origin, psk, device: dev.deviceId, phone: dev.phoneIdHash}));
		for (const [i, s] of ['https://login.example.com/q/aJo_KCwHYlaGRwkyU-OiXw', 'https://evil.example/q/aJo_KCwHYlaGRwkyU-OiXw',
			'https://login.example.com/q/aJo_KCwHYlaGRwkyU-OiXw?x', 'https://login.example.com/q/aJo_KCwHYlaGRwkyU-OiXw#x',
			'https://login.example.com/q/%61Jo_KCwHYlaGRwkyU-OiXw', 'https://login.example.com/x/../q/aJo_KCwHYlaGRwkyU-OiXw',
			'https://u@login.example.com/q/aJo_KCwHYlaGRwkyU-OiXw', 'otpauth://totp/x'].entries()) {
			try { out['qr' + i] = p.parseQRURL('https://login.example.com', s); } catch (e) { out['qr' + i] = 'error ' + e.reason; }
		}
		return out;
	})()`, &got)
	const hash = "73913b6509ff7e465e4329d705195340fa781798ab404034fa9272cea3a93edd"
	want := map[string]string{
		"phone0": "+41791234567", "phone1": "+41791234567", "phone2": "+41791234567", "phone3": "+12025550100",
		"phone4": "error invalid_phone", "phone5": "+410791234567", "phone6": "error invalid_phone",
		"phoneIdHash":    hash,
		"deviceId":       "d_ZbYGc9btiEvwHCwiLYKtoA",
		"bytes":          "qrauth-v1 decision\norigin=https://login.example.com\nroom=EBESExQVFhcYGRobHB0eHw\nnonce=QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8\nmode=login\ndevice=d_ZbYGc9btiEvwHCwiLYKtoA\nphone=" + hash + "\ndecision=approve\n",
		"login/approve":  "yoSRkS8FgR-25r7-DrF2-na_RYDXoKn0NNYUYJUetZhYgigjUz0c8oSoS2sfbSPVpUJ1n1AuXgurzp_n7YhGAw",
		"login/deny":     "Rz5z5S8S0wYT2QxpzPCVwWvZoDx0ua0dCYFHMyvCF40QzUE_9Ym_ymVP-HG-d-oHgWFIqtnkFi-lqom9A4dxDw",
		"signup/approve": "HyX9ySl0LIi0VyMCJgen31sks35GyNOJABXdpV5bTyYNDs_x938O5M2u8sn2Pg_1CGdjWF8bbGs7tC87Ni5dDA",
		"link/approve":   "41J8psaohEF51--G6j7GT1Zc7Ta-SYIzHjixn80Lma30JzHnuuda92OGt-zbcZC4axOtj-KYDeaRU7h-w_qFDw",
		"signupFrame":    `{"type":"decision","decision":"approve","signature":"HyX9ySl0LIi0VyMCJgen31sks35GyNOJABXdpV5bTyYNDs_x938O5M2u8sn2Pg_1CGdjWF8bbGs7tC87Ni5dDA","device_name":"Pixel 8","public_key":"ebVWLo_mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ"}`,
		"join1":          `{"type":"join","psk":"aJo_KCwHYlaGRwkyU-OiXw","device_id":"d_ZbYGc9btiEvwHCwiLYKtoA","phone_id_hash":"` + hash + `"}`,
		"join2":          `{"type":"join","psk":"aJo_KCwHYlaGRwkyU-OiXw","device_id":"d_ZbYGc9btiEvwHCwiLYKtoA","phone_id_hash":"` + hash + `","signature":"uPFx5A4okD1CNQbCYvSAbq_gUl-tKiXquN__SCA6d9D-lDNqc6lLLEcKgoRHXhgA0Dx06UKuU5a2cNFys0D6CA","public_key":"ebVWLo_mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ"}`,
		"join2bytes":     "qrauth-v2 join\norigin=https://login.example.com\npsk-sha256=417eed2327d5b17ba23249297bc8af97550877a637a14eef6f91568b36c8d905\ndevice=d_ZbYGc9btiEvwHCwiLYKtoA\nphone=" + hash + "\n",
		"reqDelete":      "qxzTyESDZjWNhQw0TFQc1hwDDy4YmYI-La80zyiu_NyM2BjfsJA_F-lzZTiTDNYPMp17xZSmc2w7lGWHcojrBQ",
		"reqGet":         "3jsBt7I_3rJPE2wygAHoAoybVYoGGyshvGFhhrUscLUyovLv89vBToptdw2T6BdL2l6Ei336T6RkA-b_vKhGCw",
		"reqGetBytes":    "qrauth-v1 request\nmethod=GET\npath=/api/app/sessions\ntime=1767225600\nnonce=cHFyc3R1dnd4eXp7fH1-fw\ndevice=d_ZbYGc9btiEvwHCwiLYKtoA\n",
		"qr0":            "aJo_KCwHYlaGRwkyU-OiXw",
		"qr1":            "error foreign_origin",
		"qr2":            "error not_a_qrauth_code",
		"qr3":            "error not_a_qrauth_code",
		"qr4":            "error not_a_qrauth_code",
		"qr5":            "error not_a_qrauth_code",
		"qr6":            "error not_a_qrauth_code",
		"qr7":            "error not_a_qrauth_code",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s:\n got %q\nwant %q", k, got[k], v)
		}
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("console problems:\n%s", strings.Join(p, "\n"))
	}
}

// TestPhoneAppDecodesLoginQR decodes the login page's QR PNG with the
// vendored decoder (forced, as on a browser without BarcodeDetector) under
// /app's real Content-Security-Policy, and checks that the WebAssembly came
// from our own origin.
func TestPhoneAppDecodesLoginQR(t *testing.T) {
	m := MustRunMain(t)
	origin := m.Server.Origin()
	ctx, problems := newChromium(t)
	var wasmURLs []string
	chromedp.ListenTarget(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok && strings.Contains(e.Request.URL, ".wasm") {
			wasmURLs = append(wasmURLs, e.Request.URL)
		}
	})
	if err := chromedp.Run(ctx, network.Enable(), chromedp.Navigate(origin+"/")); err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, "waiting")
	png := shownQR(t, ctx, "#qr")
	want, err := appclient.DecodeQRImage(bytes.NewReader(png))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Run(ctx, chromedp.Navigate(origin+"/app")); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, ctx, "setup")
	var got struct {
		Text string `json:"text"`
		Kind string `json:"kind"`
	}
	evalAsync(t, ctx, fmt.Sprintf(`(async () => {
		const q = await import('/static/app/qrdecode.js');
		const img = new Image(); img.src = 'data:image/png;base64,%s'; await img.decode();
		const d = await q.detector({forceVendored: true});
		return {text: await q.decode(img, {forceVendored: true}), kind: d.kind};
	})()`, base64.StdEncoding.EncodeToString(png)), &got)
	if got.Text != want || got.Kind != "zxing-wasm" {
		t.Fatalf("decoded %+v, want %q by zxing-wasm", got, want)
	}
	for _, u := range wasmURLs {
		if !strings.HasPrefix(u, origin+"/static/vendor/") {
			t.Errorf("WebAssembly fetched from %s", u)
		}
	}
	if len(wasmURLs) == 0 {
		t.Error("no WebAssembly was fetched")
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("console problems:\n%s", strings.Join(p, "\n"))
	}
}

// TestPhoneAppInsecureContext: on plain http:// at a name other than
// localhost, WebCrypto is not there; the app says so instead of failing.
func TestPhoneAppInsecureContext(t *testing.T) {
	m := MustRunMain(t)
	_, port, err := net.SplitHostPort(m.Server.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, problems := newChromium(t, chromedp.Flag("host-resolver-rules", "MAP qrauth.test 127.0.0.1"))
	if err := chromedp.Run(ctx, chromedp.Navigate("http://qrauth.test:"+port+"/app")); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, ctx, "insecure")
	var shown string
	if err := chromedp.Run(ctx, chromedp.Text("#insecure-origin", &shown, chromedp.ByQuery)); err != nil || shown != "http://qrauth.test:"+port {
		t.Fatalf("insecure origin shown %q %v", shown, err)
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("console problems:\n%s", strings.Join(p, "\n"))
	}
}

// TestPhoneAppSignUpWithBrowserForm: the phone approves a sign-up with an
// empty profile, waits while the person fills the form on the computer, and
// ends signed up like the computer.
func TestPhoneAppSignUpWithBrowserForm(t *testing.T) {
	m := runPhoneAppMain(t)
	origin := m.Server.Origin()
	camera := filepath.Join(t.TempDir(), "camera.y4m")
	desk, deskProblems := newChromium(t)
	if err := chromedp.Run(desk, chromedp.Navigate(origin+"/")); err != nil {
		t.Fatal(err)
	}
	waitState(t, desk, "waiting")
	writeCameraFile(t, shownQR(t, desk, "#qr"), camera)
	phone, phoneProblems := newPhone(t, camera)
	if err := chromedp.Run(phone, chromedp.Navigate(origin+"/app")); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "setup")
	if err := chromedp.Run(phone,
		chromedp.SendKeys("#setup-phone", "+1 (202) 555-0100", chromedp.ByQuery),
		chromedp.Click("#setup-submit", chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "home")
	if err := chromedp.Run(phone, chromedp.Click("#scan-start", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "approve")
	if err := chromedp.Run(phone, chromedp.Click("#approve-yes", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "wait")
	waitState(t, desk, "signup")
	if err := chromedp.Run(desk,
		chromedp.SendKeys("#signup-name", "Grace Hopper", chromedp.ByQuery),
		chromedp.Click("#signup-submit", chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "result")
	var result, title string
	if err := chromedp.Run(phone,
		chromedp.AttributeValue("#screen-result", "data-result", &result, nil, chromedp.ByQuery),
		chromedp.Text("#result-title", &title, chromedp.ByQuery),
	); err != nil || result != "ok" || title != "Account created" {
		t.Fatalf("result %q %q %v", result, title, err)
	}
	if err := waitSignedIn(desk, "Grace Hopper"); err != nil {
		t.Fatalf("desktop not signed up: %v", err)
	}
	for name, p := range map[string]func() []string{"desktop": deskProblems, "phone": phoneProblems} {
		if got := p(); len(got) > 0 {
			t.Errorf("%s console problems:\n%s", name, strings.Join(got, "\n"))
		}
	}
}

// phoneSetUp sets the app up in a phone context and waits for home.
func phoneSetUp(t *testing.T, phone context.Context, origin, number, name string) {
	t.Helper()
	if err := chromedp.Run(phone, chromedp.Navigate(origin+"/app")); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "setup")
	if err := chromedp.Run(phone,
		chromedp.SendKeys("#setup-phone", number, chromedp.ByQuery),
		chromedp.SendKeys("#setup-name", name, chromedp.ByQuery),
		chromedp.Click("#setup-submit", chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "home")
}

// phoneScanApprove scans with the app's camera and approves, and checks the
// approval screen's title and the result's.
func phoneScanApprove(t *testing.T, phone context.Context, wantTitle, wantResult string) {
	t.Helper()
	if err := chromedp.Run(phone, chromedp.Click("#scan-start", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "approve")
	var title string
	if err := chromedp.Run(phone, chromedp.Text("#approve-title", &title, chromedp.ByQuery)); err != nil || title != wantTitle {
		t.Fatalf("approve title %q (want %q) %v", title, wantTitle, err)
	}
	if err := chromedp.Run(phone, chromedp.Click("#approve-yes", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "result")
	if err := chromedp.Run(phone, chromedp.Text("#result-title", &title, chromedp.ByQuery)); err != nil || title != wantResult {
		t.Fatalf("result %q (want %q) %v", title, wantResult, err)
	}
}

// listItems returns the titles of a list on the account screen.
func listItems(t *testing.T, phone context.Context, list string) []string {
	t.Helper()
	var out []string
	if err := chromedp.Run(phone, chromedp.Evaluate(`[...document.querySelectorAll('#`+list+` .item-title')].map(e => e.textContent)`, &out)); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPhoneAppAccountAndLink: the phone lists the account's signed-in
// browsers and signs one out (the browser is signed out on the server);
// a second phone context links itself to the account by scanning the
// account page's "link a phone" code with the fake camera, and the first
// phone lists both phones.
func TestPhoneAppAccountAndLink(t *testing.T) {
	m := runPhoneAppMain(t)
	origin := m.Server.Origin()
	dir := t.TempDir()
	cameraA := filepath.Join(dir, "a.y4m")
	cameraB := filepath.Join(dir, "b.y4m")

	desk, deskProblems := newChromium(t)
	if err := chromedp.Run(desk, chromedp.Navigate(origin+"/")); err != nil {
		t.Fatal(err)
	}
	waitState(t, desk, "waiting")
	writeCameraFile(t, shownQR(t, desk, "#qr"), cameraA)
	phoneA, phoneAProblems := newPhone(t, cameraA)
	phoneSetUp(t, phoneA, origin, "+41 79 123 45 67", "Pixel 8")
	if err := chromedp.Run(phoneA, chromedp.Click("#scan-start", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phoneA, "approve")
	if err := chromedp.Run(phoneA, chromedp.SendKeys("#profile-name", "Ada Lovelace", chromedp.ByQuery),
		chromedp.Click("#approve-yes", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phoneA, "result")
	if err := waitSignedIn(desk, "Ada Lovelace"); err != nil {
		t.Fatal(err)
	}

	// The browsers: one, signed out from the phone.
	if err := chromedp.Run(phoneA, chromedp.Click("#result-home", chromedp.ByQuery), chromedp.Click("#home-account", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phoneA, "account")
	if err := chromedp.Run(phoneA, chromedp.WaitVisible(`#screen-account[data-state="ready"] button[data-session]`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	if got := listItems(t, phoneA, "account-sessions"); len(got) != 1 || !strings.Contains(got[0], "Chrome") {
		t.Fatalf("sessions %q", got)
	}
	if got := listItems(t, phoneA, "account-devices"); len(got) != 1 || got[0] != "Pixel 8 (this phone)" {
		t.Fatalf("devices %q", got)
	}
	saveScreenshot(t, phoneA, "phone-browsers.png")
	if err := chromedp.Run(phoneA,
		chromedp.Click(`button[data-session]`, chromedp.ByQuery),
		chromedp.Poll(`document.querySelector('#account-status').textContent.endsWith('is signed out.') && !document.querySelector('button[data-session]')`, nil),
	); err != nil {
		t.Fatal(err)
	}
	var status int
	evalAsync(t, desk, `fetch('/api/me', {headers: {Accept: 'application/json'}}).then(r => r.status)`, &status)
	if status != 401 {
		t.Fatalf("the browser signed out from the phone still gets /api/me: %d", status)
	}

	// Link: a second desktop signs in with phone A and asks to link a phone;
	// phone B (same number, a new key) scans the link code.
	desk2, desk2Problems := newChromium(t)
	if err := chromedp.Run(desk2, chromedp.Navigate(origin+"/")); err != nil {
		t.Fatal(err)
	}
	waitState(t, desk2, "waiting")
	writeCameraFile(t, shownQR(t, desk2, "#qr"), cameraA)
	if err := chromedp.Run(phoneA, chromedp.Click("#account-back", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phoneA, "home")
	phoneScanApprove(t, phoneA, "Sign in?", "Signed in")
	if err := waitSignedIn(desk2, "Ada Lovelace"); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Run(desk2, chromedp.Click("#link-phone", chromedp.ByQuery),
		chromedp.WaitVisible(`#link-qr[data-state="waiting"] #link-qr-img`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	writeCameraFile(t, shownQR(t, desk2, "#link-qr-img"), cameraB)
	phoneB, phoneBProblems := newPhone(t, cameraB)
	phoneSetUp(t, phoneB, origin, "+41 79 123 45 67", "iPhone")
	phoneScanApprove(t, phoneB, "Add this phone?", "Phone added")
	if err := chromedp.Run(desk2, chromedp.WaitVisible(`#link-qr[data-state="linked"]`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Run(phoneA, chromedp.Click("#result-home", chromedp.ByQuery), chromedp.Click("#home-account", chromedp.ByQuery),
		chromedp.WaitVisible(`#screen-account[data-state="ready"]`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	if got := listItems(t, phoneA, "account-devices"); len(got) != 2 || got[0] != "Pixel 8 (this phone)" || got[1] != "iPhone" {
		t.Fatalf("devices after the link %q", got)
	}
	// Phone B signs in too now: its list marks itself.
	if err := chromedp.Run(phoneB, chromedp.Click("#result-home", chromedp.ByQuery), chromedp.Click("#home-account", chromedp.ByQuery),
		chromedp.WaitVisible(`#screen-account[data-state="ready"]`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	if got := listItems(t, phoneB, "account-devices"); len(got) != 2 || got[1] != "iPhone (this phone)" {
		t.Fatalf("phone B's devices %q", got)
	}
	for name, p := range map[string]func() []string{"desktop": deskProblems, "desktop 2": desk2Problems, "phone A": phoneAProblems, "phone B": phoneBProblems} {
		if got := p(); len(got) > 0 {
			t.Errorf("%s console problems:\n%s", name, strings.Join(got, "\n"))
		}
	}
}

// dataURLPNG decodes a "data:image/png;base64,…" QR code of the API.
func dataURLPNG(t *testing.T, s any) []byte {
	t.Helper()
	str, _ := s.(string)
	const prefix = "data:image/png;base64,"
	if !strings.HasPrefix(str, prefix) {
		t.Fatalf("QR %.40q", str)
	}
	b, err := base64.StdEncoding.DecodeString(str[len(prefix):])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// phoneOfflineCode scans an offline challenge with the app's camera and
// returns the number it shows, typing the PIN when the code asks for one.
func phoneOfflineCode(t *testing.T, phone context.Context, pin string) (code, method string) {
	t.Helper()
	if err := chromedp.Run(phone, chromedp.Click("#scan-start", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "code")
	var st string
	if err := chromedp.Run(phone, chromedp.Poll(`document.querySelector('#screen-code').dataset.state !== 'working' && document.querySelector('#screen-code').dataset.state`, &st)); err != nil {
		t.Fatal(err)
	}
	method = "OFFLINE_DEVICE"
	if st == "pin" {
		method = "OFFLINE_PIN"
		if err := chromedp.Run(phone, chromedp.SendKeys("#code-pin", pin, chromedp.ByQuery), chromedp.Click("#code-show", chromedp.ByQuery)); err != nil {
			t.Fatal(err)
		}
	}
	if err := chromedp.Run(phone,
		chromedp.WaitVisible(`#screen-code[data-state="shown"] #code-value`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelector('#code-value').dataset.code`, &code),
	); err != nil {
		t.Fatal(err)
	}
	return code, method
}

// TestPhoneAppOfflineAndTransaction: the phone turns on both offline
// methods while online; then, set offline (no network at all, checked),
// it reads the challenge of the "sign in with a code" page from the fake
// camera and shows the number that signs the browser in, and reads a
// relying site's challenge for the other method, which the server accepts.
// Back online it approves a transaction scanned from its QR code, and
// declines one opened as /t/TOKEN the way the phone's camera app would.
func TestPhoneAppOfflineAndTransaction(t *testing.T) {
	m := offlineRunMain(t, "-psk-rotation", "2m", "-room-ttl", "3m")
	origin := m.Server.Origin()
	camera := filepath.Join(t.TempDir(), "camera.y4m")

	desk, deskProblems := newChromium(t)
	if err := chromedp.Run(desk, chromedp.Navigate(origin+"/")); err != nil {
		t.Fatal(err)
	}
	waitState(t, desk, "waiting")
	writeCameraFile(t, shownQR(t, desk, "#qr"), camera)
	phone, phoneProblems := newPhone(t, camera)
	phoneSetUp(t, phone, origin, "+41 79 123 45 67", "Pixel 8")
	if err := chromedp.Run(phone, chromedp.Click("#scan-start", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "approve")
	if err := chromedp.Run(phone,
		chromedp.SendKeys("#profile-name", "Ada Lovelace", chromedp.ByQuery),
		chromedp.SendKeys("#profile-email", "ada@example.com", chromedp.ByQuery),
		chromedp.Click("#approve-yes", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "result")
	if err := waitSignedIn(desk, "Ada Lovelace"); err != nil {
		t.Fatal(err)
	}
	var userID string
	evalAsync(t, desk, `fetch('/api/me', {headers: {Accept: 'application/json'}}).then(r => r.json()).then(d => d.user.id)`, &userID)

	// Turn both methods on.
	if err := chromedp.Run(phone, chromedp.Click("#result-home", chromedp.ByQuery), chromedp.Click("#home-offline", chromedp.ByQuery),
		chromedp.Click("#offline-device-toggle", chromedp.ByQuery),
		chromedp.WaitVisible(`#screen-offline[data-device="on"]`, chromedp.ByQuery),
		chromedp.SendKeys("#offline-pin", "8080", chromedp.ByQuery),
		chromedp.SendKeys("#offline-pin2", "8080", chromedp.ByQuery),
		chromedp.Click("#offline-pin-on", chromedp.ByQuery),
		chromedp.WaitVisible(`#screen-offline[data-pin="on"]`, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	saveScreenshot(t, phone, "phone-offline.png")
	var methods []string
	for _, mm := range offlineAPI(t, origin, "GET", "/api/offline/users/"+userID+"/methods", nil)["methods"].([]any) {
		methods = append(methods, mm.(map[string]any)["method"].(string))
	}
	if len(methods) != 2 {
		t.Fatalf("methods at the server: %v", methods)
	}
	// The PIN key is kept wrapped, never in the clear; the other one is a
	// WebCrypto key that cannot be exported.
	var keep struct {
		DeviceExtractable bool `json:"deviceExtractable"`
		DeviceType        string
		PINWrapped        int  `json:"pinWrapped"`
		PINHasKey         bool `json:"pinHasKey"`
	}
	evalAsync(t, phone, `(async () => {
		const d = await (await import('/static/app/keys.js')).loadDevice();
		return {deviceExtractable: d.offline.OFFLINE_DEVICE.key.extractable, deviceType: d.offline.OFFLINE_DEVICE.key.algorithm.name,
			pinWrapped: d.offline.OFFLINE_PIN.wrapped.length, pinHasKey: 'key' in d.offline.OFFLINE_PIN};
	})()`, &keep)
	if keep.DeviceExtractable || keep.DeviceType != "HMAC" || keep.PINWrapped != 32 || keep.PINHasKey {
		t.Fatalf("offline keys kept as %+v", keep)
	}
	if err := chromedp.Run(phone, chromedp.Click("#offline-back", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "home")

	// No network from here on.
	if err := chromedp.Run(phone, network.Enable(), network.EmulateNetworkConditions(true, 0, -1, -1)); err != nil {
		t.Fatal(err)
	}
	var reach string
	evalAsync(t, phone, `fetch('/healthz', {cache: 'no-store'}).then(() => 'reached', () => 'offline')`, &reach)
	if reach != "offline" {
		t.Fatalf("the phone still reaches the server: %s", reach)
	}

	// "Sign in with a code" in a second browser.
	desk2, desk2Problems := newChromium(t)
	if err := chromedp.Run(desk2, chromedp.Navigate(origin+"/offline")); err != nil {
		t.Fatal(err)
	}
	waitOfflineState(t, desk2, "offline", "identify")
	if err := chromedp.Run(desk2, chromedp.SendKeys("#identifier", "ada@example.com", chromedp.ByQuery),
		chromedp.Click("#identify-submit", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitOfflineState(t, desk2, "offline", "code")
	writeCameraFile(t, shownQR(t, desk2, "#offline-qr"), camera)
	code, first := phoneOfflineCode(t, phone, "8080")
	var context string
	if err := chromedp.Run(phone, chromedp.Text("#code-context", &context, chromedp.ByQuery)); err != nil || context != "Sign in to "+strings.TrimPrefix(origin, "http://") {
		t.Fatalf("context shown %q %v", context, err)
	}
	saveScreenshot(t, phone, "phone-offline-code.png")
	var kind string
	evalAsync(t, phone, `import('/static/app/qrdecode.js').then(q => q.detector()).then(d => d.kind)`, &kind)
	if kind != "zxing-wasm" {
		t.Logf("decoded by %s, not the vendored decoder", kind)
	}
	if err := chromedp.Run(desk2, chromedp.SendKeys("#otp", code, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	if err := waitSignedIn(desk2, "Ada Lovelace"); err != nil {
		t.Fatalf("the phone's offline code (%s) did not sign in: %v", first, err)
	}

	// A relying site's challenge for the other method, verified by its API.
	other := "OFFLINE_PIN"
	if first == other {
		other = "OFFLINE_DEVICE"
	}
	sess := offlineAPI(t, origin, "POST", "/api/offline/sessions", map[string]any{"user_id": userID, "method": other, "context": "Pay CHF 120.00\nto Muster AG"})
	writeCameraFile(t, dataURLPNG(t, sess["qr"]), camera)
	if err := chromedp.Run(phone, chromedp.Click("#code-done", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	code2, second := phoneOfflineCode(t, phone, "8080")
	if second != other {
		t.Fatalf("second challenge answered as %s, want %s", second, other)
	}
	if err := chromedp.Run(phone, chromedp.Text("#code-context", &context, chromedp.ByQuery)); err != nil || context != "Pay CHF 120.00\nto Muster AG" {
		t.Fatalf("context shown %q %v", context, err)
	}
	if v := offlineAPI(t, origin, "POST", "/api/offline/sessions/"+sess["id"].(string)+"/verify", map[string]any{"otp": code2}); v["result"] != "success" {
		t.Fatalf("verify %s code: %v", other, v)
	}

	// Online again: a transaction scanned from its QR code, approved.
	if err := chromedp.Run(phone, network.EmulateNetworkConditions(false, 0, -1, -1), chromedp.Click("#code-done", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "home")
	tx := offlineAPI(t, origin, "POST", "/api/approvals", map[string]any{"user_id": userID, "text": "Pay CHF 120.00 to Muster AG"})
	writeCameraFile(t, dataURLPNG(t, tx["qr"]), camera)
	if err := chromedp.Run(phone, chromedp.Click("#scan-start", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "tx")
	var text string
	if err := chromedp.Run(phone, chromedp.Text("#tx-text", &text, chromedp.ByQuery)); err != nil || text != "Pay CHF 120.00 to Muster AG" {
		t.Fatalf("transaction text %q %v", text, err)
	}
	saveScreenshot(t, phone, "phone-transaction.png")
	if err := chromedp.Run(phone, chromedp.Click("#tx-yes", chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "result")
	st := offlineAPI(t, origin, "GET", "/api/approvals/"+tx["id"].(string), nil)
	if st["status"] != "approved" || st["signature"] == "" {
		t.Fatalf("approval %v", st)
	}

	// A second one opened as /t/TOKEN, as the phone's camera app would,
	// declined.
	tx2 := offlineAPI(t, origin, "POST", "/api/approvals", map[string]any{"user_id": userID, "text": "Transfer EUR 5 000 to Evil Ltd"})
	if err := chromedp.Run(phone, chromedp.Navigate(tx2["url"].(string))); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, phone, "tx")
	if err := chromedp.Run(phone, chromedp.Text("#tx-text", &text, chromedp.ByQuery), chromedp.Click("#tx-no", chromedp.ByQuery)); err != nil || text != "Transfer EUR 5 000 to Evil Ltd" {
		t.Fatalf("transaction text %q %v", text, err)
	}
	waitScreen(t, phone, "result")
	if st := offlineAPI(t, origin, "GET", "/api/approvals/"+tx2["id"].(string), nil); st["status"] != "denied" {
		t.Fatalf("approval %v", st)
	}
	for name, p := range map[string]func() []string{"desktop": deskProblems, "desktop 2": desk2Problems, "phone": phoneProblems} {
		if got := p(); len(got) > 0 {
			t.Errorf("%s console problems:\n%s", name, strings.Join(got, "\n"))
		}
	}
}

// TestPhoneAppOfflineWorkedExamples runs the app's offline code against
// docs/offline.md and the Go implementation: the test vector of the code
// (§4), the device hint (§3), strict decoding of verification data, the
// Argon2id that wraps the PIN key (golang.org/x/crypto/argon2, as
// appclient), and the signed transaction decision (§9).
func TestPhoneAppOfflineWorkedExamples(t *testing.T) {
	m := MustRunMain(t)
	ctx, problems := newChromium(t)
	if err := chromedp.Run(ctx, chromedp.Navigate(m.Server.Origin()+"/app")); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, ctx, "setup")
	var got map[string]string
	evalAsync(t, ctx, `(async () => {
		const k = await import('/static/app/keys.js');
		const o = await import('/static/app/offline.js');
		const a = await import('/static/app/argon2.js');
		const out = {};
		const key = await crypto.subtle.importKey('raw', new TextEncoder().encode('0123456789abcdef0123456789abcdef'), {name: 'HMAC', hash: 'SHA-256'}, false, ['sign']);
		for (const d of [4, 6, 9]) out['otp' + d] = await o.offlineOTP(key, '1D6AbCdEfGhXySign in at login.example.com', d);
		out.hint = await o.deviceHint('d_AAAAAAAAAAAAAAAAAAAAAA');
		const vd = o.decodeVerificationData('1P6q3X9a-Z_kSPay CHF 120.00 to Muster AG');
		out.vd = [vd.method, vd.digits, vd.challenge, vd.hint, vd.context].join('|');
		for (const [i, s] of ['2P6q3X9a-Z_kSx', '1X6q3X9a-Z_kSx', '1P3q3X9a-Z_kSx', '1P6q3X9a-Z_k', '1P6q3X9a+Z_kSx', '1P6q3X9a-Z_kSa\u202Eb',
			'1P6q3X9a-Z_kSa\tb', '1P6q3X9a-Z_kS' + '€'.repeat(67), '1P6q3X9a-Z_kS' + '€'.repeat(66), '1D4q3X9a-Z_kSline\nbreak'].entries()) {
			try { const v = o.decodeVerificationData(s); out['vd' + i] = 'ok ' + v.context.length; } catch (e) { out['vd' + i] = 'error ' + e.reason; }
		}
		out.argon2 = k.hex(a.argon2id(new TextEncoder().encode('4711'), new TextEncoder().encode('0123456789abcdef'), {time: 2, memKiB: 19 * 1024}));
		out.blake2b = k.hex(a.blake2b(new TextEncoder().encode('abc'), 64));
		const seed = k.fromHex('0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20');
		const pkcs8 = new Uint8Array([...k.fromHex('302e020100300506032b657004220420'), ...seed]);
		const priv = await crypto.subtle.importKey('pkcs8', pkcs8, {name: 'Ed25519'}, false, ['sign']);
		const bytes = o.transactionBytes({origin: 'https://login.example.com', id: 't_AAECAwQFBgcICQoLDA0ODw', textSha256: k.hex(await crypto.subtle.digest('SHA-256', new TextEncoder().encode('Pay CHF 120.00 to Muster AG'))), device: 'd_ZbYGc9btiEvwHCwiLYKtoA', decision: 'approve'});
		out.txBytes = new TextDecoder().decode(bytes);
		out.txSig = k.b64url(await k.sign(priv, bytes));
		for (const [i, s] of ['https://login.example.com/t/AAECAwQFBgcICQoLDA0ODw', 'https://evil.example/t/AAECAwQFBgcICQoLDA0ODw',
			'https://login.example.com/t/AAECAwQFBgcICQoLDA0ODw?x', 'https://login.example.com/t/short'].entries()) {
			try { out['tx' + i] = o.parseTransactionURL('https://login.example.com', s); } catch (e) { out['tx' + i] = 'error ' + e.reason; }
		}
		return out;
	})()`, &got)
	priv := ed25519.NewKeyFromSeed([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32})
	d := wire.TransactionDecision{Origin: "https://login.example.com", TransactionID: "t_AAECAwQFBgcICQoLDA0ODw",
		TextSHA256: wire.TextSHA256("Pay CHF 120.00 to Muster AG"), DeviceID: "d_ZbYGc9btiEvwHCwiLYKtoA", Decision: wire.DecisionApprove}
	b2 := blake2b.Sum512([]byte("abc"))
	want := map[string]string{
		"otp4": "4162", "otp6": "444162", "otp9": "356444162",
		"hint": offline.DeviceHint("d_AAAAAAAAAAAAAAAAAAAAAA"),
		"vd":   "OFFLINE_PIN|6|q3X9a-Z_|kS|Pay CHF 120.00 to Muster AG",
		"vd0":  "error not_offline_code", "vd1": "error not_offline_code", "vd2": "error not_offline_code", "vd3": "error not_offline_code",
		"vd4": "error not_offline_code", "vd5": "error context_control_character", "vd6": "error context_control_character",
		"vd7": "error context_too_long", "vd8": "ok 66", "vd9": "ok 10",
		"argon2":  hex.EncodeToString(argon2.IDKey([]byte("4711"), []byte("0123456789abcdef"), 2, 19*1024, 1, 32)),
		"blake2b": hex.EncodeToString(b2[:]),
		"txBytes": string(d.SignedBytes()),
		"txSig":   d.Sign(priv),
		"tx0":     "AAECAwQFBgcICQoLDA0ODw", "tx1": "error foreign_origin", "tx2": "error not_a_transaction_code", "tx3": "error not_a_transaction_code",
	}
	if want["hint"] != "kS" {
		t.Fatalf("docs/offline.md's hint example: %s", want["hint"])
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s:\n got %q\nwant %q", k, got[k], v)
		}
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("console problems:\n%s", strings.Join(p, "\n"))
	}
}

// docReasons returns the reasons listed in the first column of the tables
// between start and end in a document.
func docReasons(t *testing.T, file, start, end string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", file))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, start)
	j := strings.Index(doc[i+1:], end)
	if i < 0 || j < 0 {
		t.Fatalf("%s: section %q not found", file, start)
	}
	var out []string
	for _, line := range strings.Split(doc[i:i+1+j], "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		for _, part := range strings.Split(cells[1], "`") {
			if p := strings.TrimSpace(part); p != "" && p != "," {
				out = append(out, p)
			}
		}
	}
	return out
}

// TestPhoneAppRefusalWords: every refusal docs/protocol.md (§12.3) and
// docs/offline.md (§10) list has a plain-words sentence in the app.
func TestPhoneAppRefusalWords(t *testing.T) {
	reasons := append(docReasons(t, "protocol.md", "### 12.3 Reasons", "Reasons that the Go"),
		docReasons(t, "offline.md", "## 10. Errors", "The phone library adds")...)
	if len(reasons) < 90 {
		t.Fatalf("only %d reasons read from the docs: %q", len(reasons), reasons)
	}
	m := MustRunMain(t)
	ctx, problems := newChromium(t)
	if err := chromedp.Run(ctx, chromedp.Navigate(m.Server.Origin()+"/app")); err != nil {
		t.Fatal(err)
	}
	waitScreen(t, ctx, "setup")
	var words map[string]string
	evalAsync(t, ctx, `import('/static/app/protocol.js').then(p => p.REASONS)`, &words)
	for _, r := range reasons {
		if w := words[r]; len(w) < 10 || strings.Contains(w, "_") {
			t.Errorf("no plain words for %q: %q", r, w)
		}
	}
	if p := problems(); len(p) > 0 {
		t.Errorf("console problems:\n%s", strings.Join(p, "\n"))
	}
}

// TestPhoneAppColorSchemes: in dark and light mode, on a 390×844 phone and
// a desktop, the app follows the scheme (the login page's colours) and its
// screens pass axe (contrast included), the ones a load does not show too.
func TestPhoneAppColorSchemes(t *testing.T) {
	m := MustRunMain(t)
	origin := m.Server.Origin()
	for _, tc := range []struct {
		scheme string
		w, h   int64
		mobile bool
		light  bool // text colour expected light (dark mode)
	}{
		{"dark", 390, 844, true, true},
		{"light", 390, 844, true, false},
		{"dark", 1280, 800, false, true},
		{"light", 1280, 800, false, false},
	} {
		t.Run(fmt.Sprintf("%s-%dx%d", tc.scheme, tc.w, tc.h), func(t *testing.T) {
			ctx, problems := newChromium(t)
			if err := chromedp.Run(ctx,
				emulation.SetDeviceMetricsOverride(tc.w, tc.h, 1, tc.mobile),
				emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: tc.scheme}}),
			); err != nil {
				t.Fatal(err)
			}
			phoneSetUp(t, ctx, origin, "+41 79 123 45 67", "Pixel 8")
			var rgb []float64
			if err := chromedp.Run(ctx, chromedp.Evaluate(`getComputedStyle(document.body).color.match(/\d+/g).slice(0, 3).map(Number)`, &rgb)); err != nil {
				t.Fatal(err)
			}
			if lum := (rgb[0] + rgb[1] + rgb[2]) / 3; (lum > 128) != tc.light {
				t.Fatalf("%s mode text colour %v", tc.scheme, rgb)
			}
			if tc.mobile {
				saveScreenshot(t, ctx, "phone-home-"+tc.scheme+".png")
			}
			for _, step := range []struct{ click, back, screen string }{
				{"", "", "home"},
				{"#home-account", "#account-back", "account"},
				{"#home-offline", "#offline-back", "offline"},
			} {
				if step.click != "" {
					if err := chromedp.Run(ctx, chromedp.Click(step.click, chromedp.ByQuery)); err != nil {
						t.Fatal(err)
					}
				}
				waitScreen(t, ctx, step.screen)
				if step.screen == "account" {
					// A phone that never scanned is unknown to the server:
					// the screen says so in words.
					if err := chromedp.Run(ctx, chromedp.WaitVisible(`#screen-account[data-state="error"]`, chromedp.ByQuery)); err != nil {
						t.Fatal(err)
					}
					var msg string
					if err := chromedp.Run(ctx, chromedp.Text("#account-status", &msg, chromedp.ByQuery)); err != nil || !strings.Contains(msg, "does not know this phone") {
						t.Fatalf("unknown phone message %q %v", msg, err)
					}
				}
				v, err := axeRun(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(v) > 0 {
					t.Errorf("%s screen:\n%s", step.screen, strings.Join(v, "\n"))
				}
				if step.back != "" {
					if err := chromedp.Run(ctx, chromedp.Click(step.back, chromedp.ByQuery)); err != nil {
						t.Fatal(err)
					}
				}
			}
			// The unknown device's 401 is logged by Chromium as a failed
			// request; anything else is a problem.
			for _, p := range problems() {
				if !strings.Contains(p, "401") {
					t.Errorf("console problem: %s", p)
				}
			}
		})
	}
}
