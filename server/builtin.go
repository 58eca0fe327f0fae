package server

// BuiltinFlows returns new instances of the flows that still live in this
// package (badges), in the order their sign-in gates
// run. Each is switched on and off by its Config section.
//
// Deprecated: a step of the move of each flow to a package of its own
// (issue 10); cmd/qrauthd will list the flow packages instead.
func BuiltinFlows() []Flow { return []Flow{&badgeFlow{}} }
