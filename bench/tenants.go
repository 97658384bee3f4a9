package bench

import (
	"context"
	"errors"
	"fmt"
)

// setupConcurrency is the number of concurrent requests that create the
// other tenants' endpoints: enough for the leader to commit them in large
// groups.
const setupConcurrency = 256

// otherTenant names the i-th other tenant. Half the names sort before
// "default" and half after, so the default tenant's index keys sit among
// theirs rather than at one end.
func otherTenant(i int) string { return fmt.Sprintf("%c-tenant-%06d", "cz"[i%2], i) }

// createOthers creates the other tenants' endpoints through the API,
// spread over the nodes, each subscribed to the messages' type and
// pointing at url, and records how long that took.
func (r *run) createOthers(ctx context.Context, urls []string, url string) error {
	total := r.cfg.OtherTenants * r.cfg.EndpointsPerTenant
	client := NewClient(urls, "", setupConcurrency)
	defer client.HTTP.CloseIdleConnections() // the servers need not keep them for the run
	elapsed, err := inParallel(ctx, r.cfg.Progress, "setup: endpoints in other tenants", total, setupConcurrency,
		func(ctx context.Context, w, i int) error {
			tenant := otherTenant(i / r.cfg.EndpointsPerTenant)
			if _, err := client.CreateTenantEndpoint(ctx, w, tenant, url, []string{eventType}); err != nil {
				return fmt.Errorf("bench: create an endpoint in tenant %s: %w", tenant, err)
			}
			return nil
		})
	if err != nil {
		return err
	}
	r.res.OtherTenants, r.res.OtherEndpoints, r.res.SetupS = r.cfg.OtherTenants, total, elapsed.Seconds()
	fmt.Fprintf(r.cfg.Progress, "setup: created %d endpoints in %d other tenants in %.1f s (%.0f/s)\n",
		total, r.cfg.OtherTenants, elapsed.Seconds(), float64(total)/elapsed.Seconds())
	return nil
}

var errNoTenantRoutes = errors.New("the server has no /v1/tenants/{tenant}/endpoints route (a build from before tenants?)")
