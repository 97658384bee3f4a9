package store

import (
	"testing"
)

// fuzzBase is the message every fuzz run's store already holds, so that
// commands naming it or its deliveries have something to act on.
const fuzzBase = "msg_01ARZ3NDEK0000000000000000"

// fuzzSeeds are valid batches touching the base state in every way.
func fuzzSeeds() [][]Command {
	d0, d1 := DeliveryID(fuzzBase, 0), DeliveryID(fuzzBase, 1)
	return [][]Command{
		{fanOut("msg_01ARZ3NDEK0000000000000001", "x", t0)},
		{withKey(override("msg_01ARZ3NDEK0000000000000002", "x", t0, "https://o.example"), "K", t0+1)},
		{ping("msg_01ARZ3NDEK0000000000000003", t0, "ep_b", "ep_x")},
		{outcome(d0, 1, t0, ResultRetry, 500, t0+5), outcome(d0, 2, t0, ResultSucceeded, 200, 0)},
		{outcome(d1, 1, t0, ResultGone, 410, 0), Command{Requeue: &Requeue{MessageID: fuzzBase, At: t0}}},
		{outcome(d0, 1, t0, ResultFailed, 500, 0), Command{Requeue: &Requeue{Since: 0, At: t0}}, Command{Sweep: &Sweep{At: t0, RetainSince: t0 + 1, Limit: 3}}},
		{outcome(d1, 1, t0, ResultCancelled, 0, 0), outcome(d0, 1, t0, "bogus", 0, 0)},
		{{UpdateEndpoint: &UpdateEndpoint{ID: "ep_a", At: t0, URL: ptr("https://moved.example"), State: ptr(StateDisabled)}}},
		{{UpdateEndpoint: &UpdateEndpoint{ID: "ep_b", At: t0, EventTypes: ptr([]string{"y"}), State: ptr(StateDisabledFailing)}}},
		{{DeleteEndpoint: &DeleteEndpoint{ID: "ep_a", At: t0}}, createEndpoint("ep_a", "https://again.example", t0)},
		{{RotateSecret: &RotateSecret{EndpointID: "ep_a", Secret: "whsec_2", At: t0, RevokeAt: t0 + 10}}},
		{{AddSigningKey: &AddSigningKey{Key: SigningKey{ID: "k2", Alg: "ed25519", CreatedAt: t0}}}, {Sweep: &Sweep{At: t0, KeysRetiredBefore: t0 + 1, Limit: 5}}},
		{{PutNode: &Node{ID: "n1", APIAddr: "a", RaftAddr: "r"}}, {}},
	}
}

// FuzzDecodeBatch feeds arbitrary log entries to DecodeBatch and, when one
// decodes, to Apply on a fresh store: Apply must either fail cleanly
// (leaving the file as it was) or leave every invariant Check verifies.
//
//	go test -run='^$' -fuzz=FuzzDecodeBatch -fuzztime=30s ./store/
func FuzzDecodeBatch(f *testing.F) {
	for _, cmds := range fuzzSeeds() {
		data, err := EncodeBatch(cmds)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"", "\x01", "\x01[]", "\x01[{}]", "\x01null", "\x02[]", "garbage", "\x01[{\"enqueue\":{\"id\":\"m\"}}]",
		"\x01[{\"enqueue\":{\"id\":\"msg_1\",\"envelope\":{}}},{\"outcome\":{\"delivery_id\":\"dlv_10000\",\"attempt\":1,\"result\":\"gone\"}}]",
		"\x01[{\"sweep\":{\"at\":9223372036854775807,\"retain_since\":9223372036854775807,\"limit\":-1}}]",
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		cmds, err := DecodeBatch(data)
		if err != nil {
			return
		}
		if _, err := EncodeBatch(cmds); err != nil {
			t.Fatalf("a decoded batch does not encode: %v", err)
		}
		s := openTest(t)
		runOK(t, s,
			createEndpoint("ep_a", "https://a.example", t0),
			createEndpoint("ep_b", "https://b.example", t0, "x"),
			fanOut(fuzzBase, "x", t0),
			Command{AddSigningKey: &AddSigningKey{Key: SigningKey{ID: "k1", Alg: "ed25519", CreatedAt: t0}}},
		)
		before := mustDump(t, s)

		res, err := s.Apply([]Entry{{Index: 2, Data: data}})
		if err != nil {
			// A write error: nothing of the batch may remain.
			if d := diffDumps(before, mustDump(t, s)); d != "" {
				t.Fatalf("Apply failed (%v) but changed the state:\n%s", err, d)
			}
			return
		}
		if len(res) != 1 || len(res[0]) != len(cmds) {
			t.Fatalf("%d commands, results %+v", len(cmds), res)
		}
		if err := s.Check(); err != nil {
			t.Fatalf("after applying %s: %v", data, err)
		}
		checkOwnership(t, s)
		// The same batch again (a retried command) keeps the invariants.
		if _, err := s.Apply([]Entry{{Index: 3, Data: data}}); err == nil {
			if err := s.Check(); err != nil {
				t.Fatalf("after applying %s twice: %v", data, err)
			}
			checkOwnership(t, s)
		}
	})
}
