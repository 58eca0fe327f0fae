package qrauth

// BadgeStore is the part of Store that the badge flow needs. Its methods
// follow the contract stated on Store.
type BadgeStore interface {
}
