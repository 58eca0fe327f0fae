package qrauth

import "slices"

// Role is a permission held by a user, beyond using their own account.
type Role string

// Roles.
const (
	// RoleAdmin manages users, their roles and their methods.
	RoleAdmin Role = "admin"
	// RoleHelpdesk issues badges for others and unlocks locked methods.
	RoleHelpdesk Role = "helpdesk"
	// RoleSecretViewer may view users' OATH secrets; separate from admin on
	// purpose, so that viewing a secret is a deliberate grant.
	RoleSecretViewer Role = "secret_viewer"
)

// Roles lists every role, for validation and help texts.
var Roles = []Role{RoleAdmin, RoleHelpdesk, RoleSecretViewer}

// ValidRole reports whether r is a known role.
func ValidRole(r Role) bool { return slices.Contains(Roles, r) }

// HasRole reports whether u holds r.
func (u *User) HasRole(r Role) bool { return u != nil && slices.Contains(u.Roles, r) }
