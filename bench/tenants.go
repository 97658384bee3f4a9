package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next, done atomic.Int64
	var once sync.Once
	var firstErr error
	stop := r.setupProgress(&done, total)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range setupConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < total && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				tenant := otherTenant(i / r.cfg.EndpointsPerTenant)
				if _, err := client.CreateTenantEndpoint(ctx, w, tenant, url, []string{eventType}); err != nil {
					once.Do(func() { firstErr = fmt.Errorf("bench: create an endpoint in tenant %s: %w", tenant, err); cancel() })
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	stop()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return firstErr
	}
	r.res.OtherTenants, r.res.OtherEndpoints, r.res.SetupS = r.cfg.OtherTenants, total, elapsed.Seconds()
	fmt.Fprintf(r.cfg.Progress, "setup: created %d endpoints in %d other tenants in %.1f s (%.0f/s)\n",
		total, r.cfg.OtherTenants, elapsed.Seconds(), float64(total)/elapsed.Seconds())
	return nil
}

// setupProgress prints how many endpoints exist every half second until
// stopped.
func (r *run) setupProgress(done *atomic.Int64, total int) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				fmt.Fprintf(r.cfg.Progress, "\rsetup: %d/%d endpoints in other tenants   ", done.Load(), total)
			case <-quit:
				fmt.Fprint(r.cfg.Progress, "\r\033[K")
				return
			}
		}
	}()
	return func() { close(quit); wg.Wait() }
}

var errNoTenantRoutes = errors.New("the server has no /v1/tenants/{tenant}/endpoints route (a build from before tenants?)")
