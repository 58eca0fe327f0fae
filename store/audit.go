package store

import (
	"bytes"
	"context"
	"fmt"
	"math"

	"github.com/qrauth/qrauth"
	bolt "go.etcd.io/bbolt"
)

// Limits of ListAudit, from qrauth.AuditFilter.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

// pendingEvents are the audit events of one write. They are copied before
// the transaction so that every attempt of a Batch function starts from the
// caller's values, and the assigned Seqs reach the caller only after commit.
type pendingEvents struct {
	dst  []*qrauth.AuditEvent
	evs  []qrauth.AuditEvent
	seqs []uint64
}

func newPendingEvents(events []*qrauth.AuditEvent) (*pendingEvents, error) {
	p := &pendingEvents{
		dst:  events,
		evs:  make([]qrauth.AuditEvent, len(events)),
		seqs: make([]uint64, len(events)),
	}
	for i, e := range events {
		if e == nil {
			return nil, invalidf("nil audit event")
		} else if e.UserID != "" {
			if err := checkUserID(e.UserID); err != nil {
				return nil, err
			}
		}
		p.evs[i] = *e
	}
	return p, nil
}

// write appends the events in tx. Seqs come from the bucket's sequence,
// which rolls back with the transaction, so a retry reassigns the same ones.
func (p *pendingEvents) write(tx *bolt.Tx) error {
	audit, byUser := tx.Bucket(bucketAudit), tx.Bucket(bucketAuditByUser)
	for i := range p.evs {
		seq, err := audit.NextSequence()
		if err != nil {
			return err
		}
		e := p.evs[i]
		e.Seq = seq
		if err := put(audit, u64(seq), &e); err != nil {
			return err
		}
		if e.UserID != "" {
			if err := byUser.Put(userKey(e.UserID, u64(seq)), present); err != nil {
				return err
			}
		}
		p.seqs[i] = seq
	}
	return nil
}

// commit hands the Seqs of the committed transaction to the caller's
// events and tells obs of each: every audit event passes here once, after
// it is durable and never for a rolled-back attempt.
func (p *pendingEvents) commit(obs Observer) {
	for i, e := range p.dst {
		e.Seq = p.seqs[i]
		ev := p.evs[i]
		ev.Seq = p.seqs[i]
		obs.Appended(ev)
	}
}

// AppendAudit implements qrauth.Store.
func (db *DB) AppendAudit(ctx context.Context, events ...*qrauth.AuditEvent) error {
	if len(events) == 0 {
		return ctxError(ctx)
	}
	return db.update(ctx, true, events, nil)
}

// ListAudit implements qrauth.Store. A negative Limit counts as 0. With
// f.UserID set it walks that user's index rather than the whole log.
func (db *DB) ListAudit(ctx context.Context, f qrauth.AuditFilter) ([]*qrauth.AuditEvent, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = defaultAuditLimit
	} else if limit > maxAuditLimit {
		limit = maxAuditLimit
	}
	evs := []*qrauth.AuditEvent{}
	if f.AfterSeq == math.MaxUint64 || (f.UserID != "" && checkUserID(f.UserID) != nil) {
		return evs, ctxError(ctx)
	}
	start := u64(f.AfterSeq + 1)

	err := db.view(ctx, func(tx *bolt.Tx) error {
		audit := tx.Bucket(bucketAudit)
		if f.UserID == "" {
			c := audit.Cursor()
			for k, v := c.Seek(start); k != nil && len(evs) < limit; k, v = c.Next() {
				e, err := decode[qrauth.AuditEvent](k, v)
				if err != nil {
					return err
				}
				evs = append(evs, e)
			}
			return nil
		}

		prefix := userPrefix(f.UserID)
		c := tx.Bucket(bucketAuditByUser).Cursor()
		for k, _ := c.Seek(userKey(f.UserID, start)); k != nil && bytes.HasPrefix(k, prefix) && len(evs) < limit; k, _ = c.Next() {
			seq := k[len(prefix):]
			v := audit.Get(seq)
			if v == nil {
				return fmt.Errorf("audit index of user %q points to missing event %x", f.UserID, seq)
			}
			e, err := decode[qrauth.AuditEvent](seq, v)
			if err != nil {
				return err
			}
			evs = append(evs, e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return evs, nil
}
