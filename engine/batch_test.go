package engine

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
)

func batchInputs(n int) []MessageInput {
	ins := make([]MessageInput, n)
	for i := range ins {
		ins[i] = MessageInput{Type: "job.done", Data: json.RawMessage(`{"n": 1}`)}
	}
	return ins
}

func TestEnqueueBatch(t *testing.T) {
	e := openEngine(t, nil)
	ctx := context.Background()
	ins := batchInputs(5)
	ins[0].IdempotencyKey = "K"
	ins[1].Type = "not a type"
	ins[2].IdempotencyKey = "K" // the same request again: the first message
	ins[3].IdempotencyKey = "K"
	ins[3].Data = json.RawMessage(`{"n": 2}`) // another request with the key
	rep, err := e.prop.propose(ctx, &request{EnqueueBatch: &batchReq{Messages: ins}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Index == 0 || len(rep.Batch) != len(ins) {
		t.Fatalf("reply index %d with %d items, want one entry and %d items", rep.Index, len(rep.Batch), len(ins))
	}
	res, err := e.EnqueueBatch(ctx, "", ins)
	if err != nil {
		t.Fatal(err)
	}
	first := rep.Batch[0].Message
	if !rep.Batch[0].Created || first == nil || first.Tenant != DefaultTenant {
		t.Fatalf("first item: %+v", rep.Batch[0])
	}
	var inv *InvalidError
	if err := fromWire(rep.Batch[1].Error); !errors.As(err, &inv) || inv.Field != "type" {
		t.Errorf("invalid item: %v", err)
	}
	if it := rep.Batch[2]; it.Created || it.Message == nil || it.Message.ID != first.ID {
		t.Errorf("the key again in the batch: %+v, want %s replayed", it, first.ID)
	}
	if err := fromWire(rep.Batch[3].Error); !errors.Is(err, ErrIdempotencyKeyReused) {
		t.Errorf("the key for another request: %v", err)
	}
	if it := rep.Batch[4]; !it.Created || it.Message == nil {
		t.Errorf("last item: %+v", it)
	}
	// The second call: the key replays across batches, the rest is new.
	if r := res[0]; r.Err != nil || r.Created || r.Message.ID != first.ID {
		t.Errorf("the key in a second batch: %+v, want %s replayed", r, first.ID)
	}
	if r := res[4]; r.Err != nil || !r.Created || r.Message.ID == rep.Batch[4].Message.ID {
		t.Errorf("a message without a key in a second batch: %+v", r)
	}
	if _, err := e.Message(ctx, "", res[4].Message.ID); err != nil {
		t.Errorf("read back: %v", err)
	}

	for _, n := range []int{0, MaxBatchMessages + 1} {
		if _, err := e.EnqueueBatch(ctx, "", batchInputs(n)); !errors.As(err, &inv) || inv.Field != "messages" {
			t.Errorf("a batch of %d: %v, want invalid messages", n, err)
		}
	}
}

func TestClusterFollowerForwardsBatch(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	follower := (c.leader() + 1) % 3
	ctx := context.Background()
	ins := batchInputs(3)
	ins[1].Data = json.RawMessage(`[]`)
	res, err := c.engines[follower].EnqueueBatch(ctx, "", ins)
	if err != nil {
		t.Fatal(err)
	}
	var inv *InvalidError
	if !errors.As(res[1].Err, &inv) || inv.Field != "data" {
		t.Errorf("invalid item through the leader: %v", res[1].Err)
	}
	for _, i := range []int{0, 2} {
		if res[i].Err != nil || !res[i].Created {
			t.Fatalf("item %d: %+v", i, res[i])
		}
		if _, err := c.engines[follower].Message(ctx, "", res[i].Message.ID); err != nil {
			t.Errorf("read back %s on the follower: %v", res[i].Message.ID, err)
		}
	}
	c.converge()
}
