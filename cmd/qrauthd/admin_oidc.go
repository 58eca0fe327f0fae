package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

func adminOIDC(ctx context.Context, cl *adminClient, args []string, out io.Writer) error {
	switch {
	case len(args) == 1 && args[0] == "rotate-keys":
		var v struct {
			Keys     int    `json:"keys"`
			Grace    string `json:"grace"`
			SignFrom string `json:"sign_from"`
		}
		if err := cl.do(ctx, "POST", "/admin/api/oidc/rotate-keys", nil, &v); err != nil {
			return err
		}
		if v.SignFrom != "" { // a cluster: every instance publishes them first
			fmt.Fprintf(out, "new signing keys made and published; they sign from %s, the old ones until then and verify for %s more (%d keys published)\n",
				v.SignFrom, v.Grace, v.Keys)
			return nil
		}
		fmt.Fprintf(out, "new signing keys made; the old ones verify for %s more (%d keys published)\n", v.Grace, v.Keys)
		return nil
	case len(args) >= 2 && args[0] == "clients" && args[1] == "list":
		var v struct {
			Clients []struct {
				ID           string   `json:"id"`
				Name         string   `json:"name"`
				Public       bool     `json:"public"`
				RedirectURIs []string `json:"redirect_uris"`
				Scopes       []string `json:"scopes"`
				SkipConsent  bool     `json:"skip_consent"`
				Source       string   `json:"source"`
			} `json:"clients"`
		}
		if err := cl.do(ctx, "GET", "/admin/api/oidc/clients", nil, &v); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tTYPE\tCONSENT\tSOURCE\tSCOPES\tREDIRECT URIS")
		for _, c := range v.Clients {
			typ, consent, source := "confidential", "asked", "admin"
			if c.Public {
				typ = "public"
			}
			if c.SkipConsent {
				consent = "skipped"
			}
			if c.Source != "" {
				source = c.Source // "config": declared in the config file
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Name, typ, consent, source,
				strings.Join(c.Scopes, " "), strings.Join(c.RedirectURIs, " "))
		}
		return tw.Flush()
	case len(args) == 3 && args[0] == "clients" && args[1] == "remove":
		if err := cl.do(ctx, "DELETE", "/admin/api/oidc/clients/"+url.PathEscape(args[2]), nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(out, "removed client %s and its tokens\n", args[2])
		return nil
	case len(args) >= 2 && args[0] == "clients" && args[1] == "add":
		fs := flag.NewFlagSet("oidc clients add", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var req struct {
			ID             string   `json:"id"`
			Name           string   `json:"name"`
			RedirectURIs   []string `json:"redirect_uris"`
			PostLogoutURIs []string `json:"post_logout_uris"`
			Public         bool     `json:"public"`
			Scopes         []string `json:"scopes,omitempty"`
			SkipConsent    bool     `json:"skip_consent"`
			IDTokenAlg     string   `json:"id_token_alg"`
		}
		var redirects, logouts, scopes multiFlag
		fs.StringVar(&req.ID, "id", "", "")
		fs.StringVar(&req.Name, "name", "", "")
		fs.Var(&redirects, "redirect", "")
		fs.Var(&logouts, "post-logout", "")
		fs.BoolVar(&req.Public, "public", false, "")
		fs.Var(&scopes, "scope", "")
		fs.BoolVar(&req.SkipConsent, "skip-consent", false, "")
		fs.StringVar(&req.IDTokenAlg, "alg", "", "")
		if err := fs.Parse(args[2:]); err != nil || fs.NArg() > 0 {
			return errUsage
		}
		req.RedirectURIs, req.PostLogoutURIs, req.Scopes = redirects, logouts, scopes
		var v struct {
			Secret string `json:"secret"`
		}
		if err := cl.do(ctx, "POST", "/admin/api/oidc/clients", req, &v); err != nil {
			return err
		}
		fmt.Fprintf(out, "registered client %s\n", req.ID)
		if v.Secret != "" {
			fmt.Fprintf(out, "client secret (shown once, stored only hashed): %s\n", v.Secret)
		}
		return nil
	}
	return errUsage
}
