package qrauth

// OfflineStore is the part of Store that the offline flow needs. Its methods
// follow the contract stated on Store.
type OfflineStore interface {
}
