package bench

import (
	"context"
	"testing"
	"time"
)

// TestOtherTenants runs the steady scenario with other tenants' endpoints
// created first and a warm-up: nothing is lost, none of them is called
// (Run fails if one is), and the warm-up counts in no figure.
func TestOtherTenants(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Run(ctx, Config{Scenario: "steady", Binary: heraldBin, Dir: t.TempDir(), Messages: 300, Concurrency: 8,
		OtherTenants: 25, EndpointsPerTenant: 3, Warmup: 100})
	if err != nil {
		t.Fatal(err)
	}
	if res.OtherTenants != 25 || res.OtherEndpoints != 75 || res.SetupS <= 0 {
		t.Errorf("other tenants %d, endpoints %d, setup %.3f s; want 25, 75 and a time", res.OtherTenants, res.OtherEndpoints, res.SetupS)
	}
	if res.Lost != 0 || res.Dups != 0 || res.BadSigs != 0 || res.Requests != 300 || res.Warmup != 100 {
		t.Errorf("lost %d, duplicates %d, bad signatures %d, receiver requests %d (want 300), warm-up %d",
			res.Lost, res.Dups, res.BadSigs, res.Requests, res.Warmup)
	}
}

// TestOtherTenantNames checks that the other tenants' names are valid
// tenant ids, distinct, and on both sides of "default".
func TestOtherTenantNames(t *testing.T) {
	seen := map[string]bool{}
	before, after := 0, 0
	for i := range 1000 {
		n := otherTenant(i)
		if seen[n] || len(n) > 64 || n[0] < 'a' || n[0] > 'z' {
			t.Fatalf("tenant %d: %q repeated or malformed", i, n)
		}
		seen[n] = true
		if n < "default" {
			before++
		} else {
			after++
		}
	}
	if before == 0 || after == 0 {
		t.Errorf("%d tenants sort before default, %d after", before, after)
	}
}
