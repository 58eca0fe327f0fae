// Package forwardauth answers reverse proxies' forward-auth requests (nginx
// auth_request, Traefik forwardAuth, Caddy forward_auth), so that any web
// application behind such a proxy is signed in with qrauth without knowing
// anything about it. It is a flow beside the core (server.Flow, name
// "forward-auth") whose gate never asks for a step: it only adds routes,
// and reaches the core only through server.Host.
//
// # Flow
//
//  1. A browser asks the proxy for https://app.example.com/page. The proxy
//     first asks GET /api/authz/forward-auth, passing the browser's
//     headers (its cookies among them) and the original address: nginx in
//     X-Original-URL, Traefik and Caddy in X-Forwarded-Proto,
//     X-Forwarded-Host and X-Forwarded-Uri.
//  2. The browser holds a valid qrauth session (its cookie is on the
//     configured cookie domain, so app.example.com receives it too), and
//     the host's rule admits one of the user's roles: 200 with Remote-User
//     (the stable user id), Remote-Name, Remote-Email and Remote-Groups
//     (the roles, comma-separated), which the proxy copies into the request
//     it passes on.
//  3. No valid session: a redirect to ORIGIN/authz/signin?rd=ORIGINAL. Traefik
//     and Caddy pass the 302 on to the browser. nginx cannot pass a
//     redirect through auth_request, so it gets 401 with the same Location
//     header, which its error_page directive turns into the redirect.
//  4. /authz/signin checks rd (an http(s) address on a configured domain,
//     nothing else: never an open redirect), sends a signed-out browser to
//     the login page with next=/authz/signin?rd=…, and a signed-in one on
//     to rd. So after the QR sign-in the login page returns the browser to
//     /authz/signin, which returns it to the original address.
//  5. Signed in, but the host's rule names roles the user holds none of:
//     403 with a page saying so (nginx shows it through error_page too).
package forwardauth
