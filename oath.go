package qrauth

// OATHStore is the part of Store that the oath flow needs. Its methods
// follow the contract stated on Store.
type OATHStore interface {
}
