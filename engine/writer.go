package engine

import (
	"context"
	"log/slog"
	"time"

	"github.com/heraldhq/herald/cluster"
	"github.com/heraldhq/herald/store"
)

// writer executes requests on the leader: it validates them as the API
// promises, stamps ids, times and secrets, and commits the commands. The
// same code runs for a call made on the leader and for one a follower
// forwarded.
type writer struct {
	cfg   Config
	log   *slog.Logger
	store *store.Store
	node  *cluster.Node
	keys  *keyring
	reads *readGate // for the few requests that read before they write
}

// execute runs one request.
func (w *writer) execute(ctx context.Context, req *request) (reply, error) {
	switch {
	case req.CreateEndpoint != nil:
		return w.createEndpoint(ctx, *req.CreateEndpoint)
	case req.UpdateEndpoint != nil:
		return w.updateEndpoint(ctx, req.UpdateEndpoint.Tenant, req.UpdateEndpoint.ID, req.UpdateEndpoint.Update)
	case req.DeleteEndpoint != nil:
		return w.deleteEndpoint(ctx, req.DeleteEndpoint.Tenant, req.DeleteEndpoint.ID)
	case req.RotateSecret != nil:
		return w.rotateSecret(ctx, req.RotateSecret.Tenant, req.RotateSecret.ID, req.RotateSecret.RevokeNow)
	case req.Ping != nil:
		return w.ping(ctx, req.Ping.Tenant, req.Ping.ID)
	case req.Enqueue != nil:
		return w.enqueue(ctx, *req.Enqueue)
	case req.EnqueueBatch != nil:
		return w.enqueueBatch(ctx, *req.EnqueueBatch)
	case req.Retry != nil:
		return w.retry(ctx, req.Retry.Tenant, req.Retry.ID)
	case req.Recover != nil:
		return w.recover(ctx, req.Recover.Tenant, "", req.Recover.Since, req.Recover.Until)
	case req.DeleteTenant != nil:
		return w.deleteTenant(ctx, req.DeleteTenant.ID)
	case req.CreateToken != nil:
		return w.createToken(ctx, req.CreateToken.Tenant, req.CreateToken.TTL)
	case req.RevokeTokens != nil:
		return w.revokeTokens(ctx, req.RevokeTokens.ID)
	case req.RotateSigningKey != nil:
		return w.rotateSigningKey(ctx)
	case req.AddNode != nil:
		return w.addNode(ctx, req.AddNode.ID, req.AddNode.RaftAddr)
	case req.RemoveNode != nil:
		return w.removeNode(ctx, req.RemoveNode.ID)
	case req.PublishNode != nil:
		return w.publishNode(ctx, *req.PublishNode)
	}
	return reply{}, invalid("request", "names no operation")
}

// commit applies one command on this node, which must lead, and maps
// errors and rejections to the engine's.
func (w *writer) commit(ctx context.Context, cmd store.Command) (store.Result, error) {
	res, err := w.node.Apply(ctx, cmd)
	if err != nil {
		return res, fromCluster(err)
	}
	return res, fromCluster(res.Err)
}

// publishNode records a node's addresses, unless the store has them
// already.
func (w *writer) publishNode(ctx context.Context, n store.Node) (reply, error) {
	nodes, err := w.store.Nodes()
	if err != nil {
		return reply{}, fromCluster(err)
	}
	for _, known := range nodes {
		if known == n {
			return reply{}, nil
		}
	}
	res, err := w.commit(ctx, store.Command{PutNode: &n})
	return reply{Index: res.Index}, err
}

// sweep removes expired idempotency keys, finished messages past retention
// and retired keys, a bounded batch at a time.
func (w *writer) sweep(ctx context.Context) {
	for ctx.Err() == nil {
		now := w.cfg.Now()
		res, err := w.commit(ctx, store.Command{Sweep: &store.Sweep{
			At:                now.UnixNano(),
			RetainSince:       now.Add(-w.cfg.Retention).UnixNano(),
			KeysRetiredBefore: now.Add(-keyRetirementTTL).UnixNano(),
			Limit:             sweepLimit,
		}})
		if err != nil {
			if ctx.Err() == nil {
				w.log.Warn("sweep failed", "error", err)
			}
			return
		}
		if res.Count < sweepLimit {
			return
		}
	}
}

// utc converts a record's Unix nanoseconds to a time.
func utc(nanos int64) time.Time { return time.Unix(0, nanos).UTC() }
