package oidcflow

import (
	"slices"
	"testing"
	"time"

	"github.com/qrauth/qrauth/oidc"
)

// TestOIDCNextKeys: the key set a load or a rotation makes, and which key
// signs when.
func TestOIDCNextKeys(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	grace := 24 * time.Hour
	key := func(id, alg string) *oidc.SigningKey {
		return &oidc.SigningKey{ID: id, Alg: alg, Private: []byte("sealed"), CreatedAt: t0}
	}
	fresh := map[string]*oidc.SigningKey{oidc.AlgRS256: key("r2", oidc.AlgRS256), oidc.AlgEdDSA: key("e2", oidc.AlgEdDSA)}
	signer := func(keys []*oidc.SigningKey, alg string, now time.Time) string {
		for i := len(keys) - 1; i >= 0; i-- {
			if keys[i].Alg == alg && keys[i].SignsAt(now) {
				return keys[i].ID
			}
		}
		return ""
	}
	ids := func(keys []*oidc.SigningKey) []string {
		var out []string
		for _, k := range keys {
			out = append(out, k.ID)
		}
		return out
	}

	// An empty store: one key of each algorithm, signing at once; without
	// the fresh keys, their algorithms are named.
	out, missing, changed := nextKeys(nil, t0, false, t0, grace, nil)
	if !changed || !slices.Equal(missing, []string{oidc.AlgRS256, oidc.AlgEdDSA}) || len(out) != 0 {
		t.Fatalf("empty, no fresh keys: %v %v %v", ids(out), missing, changed)
	}
	start, _, _ := nextKeys(nil, t0, false, t0, grace, fresh)
	if !slices.Equal(ids(start), []string{"r2", "e2"}) || signer(start, oidc.AlgRS256, t0) != "r2" {
		t.Fatalf("empty: %v", ids(start))
	}
	// A set that is complete changes nothing, and is not modified.
	if _, _, changed := nextKeys(start, t0.Add(time.Hour), false, t0, grace, nil); changed {
		t.Fatal("a complete set changed")
	}

	old := []*oidc.SigningKey{key("r1", oidc.AlgRS256), key("e1", oidc.AlgEdDSA)}
	// Alone (signFrom = now): the new key signs at once, as before clusters.
	now := t0.Add(time.Hour)
	alone, _, _ := nextKeys(old, now, true, now, grace, fresh)
	if signer(alone, oidc.AlgRS256, now) != "r2" || !alone[len(alone)-1].SignFrom.IsZero() {
		t.Fatalf("alone: %+v", alone)
	}
	if !old[0].RetiredAt.IsZero() {
		t.Fatal("nextKeys changed the records it was given")
	}
	// In a cluster: the old key signs until signFrom, the new one after;
	// both published (neither past VerifyUntil) meanwhile.
	from := now.Add(time.Minute)
	cl, _, _ := nextKeys(old, now, true, from, grace, fresh)
	for _, c := range []struct {
		at   time.Time
		want string
	}{{now, "r1"}, {from.Add(-time.Nanosecond), "r1"}, {from, "r2"}} {
		if got := signer(cl, oidc.AlgRS256, c.at); got != c.want {
			t.Errorf("cluster rotation, at %v: %s signs, want %s", c.at, got, c.want)
		}
	}
	if !cl[0].VerifyUntil.Equal(from.Add(grace)) {
		t.Errorf("the old key verifies until %v", cl[0].VerifyUntil)
	}
	// Rotated again before its turn: r2 signs between the two times, r3
	// after.
	now2, from2 := now.Add(10*time.Second), now.Add(70*time.Second)
	again, _, _ := nextKeys(cl, now2, true, from2, grace,
		map[string]*oidc.SigningKey{oidc.AlgRS256: key("r3", oidc.AlgRS256), oidc.AlgEdDSA: key("e3", oidc.AlgEdDSA)})
	for _, c := range []struct {
		at   time.Time
		want string
	}{{now2, "r1"}, {from, "r2"}, {from2, "r3"}} {
		if got := signer(again, oidc.AlgRS256, c.at); got != c.want {
			t.Errorf("double rotation, at %v: %s signs, want %s", c.at, got, c.want)
		}
	}
	// Past its grace a retired key is dropped.
	later, _, changed := nextKeys(again, from.Add(grace), false, from.Add(grace), grace, nil)
	if !changed || !slices.Equal(ids(later), []string{"r2", "e2", "r3", "e3"}) {
		t.Fatalf("after the grace: %v", ids(later))
	}
}
