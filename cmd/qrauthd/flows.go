package main

import (
	"github.com/qrauth/qrauth/server"
	"github.com/qrauth/qrauth/server/badgeflow"
	"github.com/qrauth/qrauth/server/forwardauth"
	"github.com/qrauth/qrauth/server/oathflow"
	"github.com/qrauth/qrauth/server/offlineflow"
	"github.com/qrauth/qrauth/server/oidcflow"
	"github.com/qrauth/qrauth/server/recoveryflow"
)

// flows returns the flows beside the core, in the order their sign-in gates
// run: the one explicit list (docs/architecture.md, "Adding a flow"). A
// flow is listed only when switched on, so that the routes of one that is
// off do not exist and the pages leave out what would call them.
func (m *Main) flows(db fullStore) ([]server.Flow, error) {
	var flows []server.Flow
	if m.BadgeOn {
		// First: its fallback step (a password after an insecure badge)
		// gives way to a later gate's step.
		badge, err := badgeflow.New(m.Badge, db, m.Config.MasterKey)
		if err != nil {
			return nil, err
		}
		flows = append(flows, badge)
	}
	if m.oathOn() {
		// After the badge flow, whose fallback step (a password after an
		// insecure badge) gives way to OATH's code; before the offline
		// codes, which ask nothing.
		oath, err := oathflow.New(m.OATH, db, m.Config.MasterKey)
		if err != nil {
			return nil, err
		}
		flows = append(flows, oath)
	}
	if m.OfflineOn {
		off, err := offlineflow.New(m.Offline, db, m.Config.MasterKey)
		if err != nil {
			return nil, err
		}
		flows = append(flows, off)
	}
	// Recovery asks nothing at sign-in; its place in the list does not
	// matter. It is always on: a lost phone must never lock anyone out.
	rec, err := recoveryflow.New(m.Recovery, db)
	if err != nil {
		return nil, err
	}
	flows = append(flows, rec)
	if len(m.ForwardAuth.Domains) > 0 {
		flows = append(flows, forwardauth.New(m.ForwardAuth))
	}
	if m.OIDC {
		flows = append(flows, oidcflow.New(m.OIDCConfig, db)) // last: its gate runs after the others'
	}
	return flows, nil
}
