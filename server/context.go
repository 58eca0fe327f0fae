package server

import (
	"crypto/subtle"
	"net/netip"
	"strings"
)

// Locator names the approximate place of a client address for the phone to
// show, or "" when unknown. Deployments with a GeoIP database plug it in
// here.
type Locator interface {
	Place(ip string) string
}

// LocalLocator knows only what the address itself says.
type LocalLocator struct{}

// Place implements Locator.
func (LocalLocator) Place(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return "This computer"
	case a.IsPrivate(), a.IsLinkLocalUnicast():
		return "Local network"
	}
	return ""
}

// parseUserAgent names the browser and operating system from a User-Agent
// header, well enough for a person to recognise their own browser. Order
// matters: Edge and Opera also say Chrome, Chrome also says Safari.
func parseUserAgent(ua string) (browser, os string) {
	has := func(s string) bool { return strings.Contains(ua, s) }
	switch {
	case has("Edg/"):
		browser = "Edge"
	case has("OPR/"), has("Opera"):
		browser = "Opera"
	case has("Firefox/"):
		browser = "Firefox"
	case has("HeadlessChrome/"):
		browser = "Chrome (headless)"
	case has("Chromium/"):
		browser = "Chromium"
	case has("Chrome/"), has("CriOS/"):
		browser = "Chrome"
	case has("Safari/"):
		browser = "Safari"
	case ua == "":
		browser = "Unknown browser"
	default:
		browser = "Other"
	}
	switch {
	case has("Android"):
		os = "Android"
	case has("iPhone"), has("iPad"), has("iPod"):
		os = "iOS"
	case has("Windows"):
		os = "Windows"
	case has("Mac OS X"), has("Macintosh"):
		os = "macOS"
	case has("CrOS"):
		os = "ChromeOS"
	case has("Linux"):
		os = "Linux"
	default:
		os = "Unknown"
	}
	return browser, os
}

func subtleEq(a, b string) int { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) }
