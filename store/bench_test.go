package store

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

const benchBatch = 100 // commands per log entry, as group commit makes them

// benchStore opens a store with the default Options (fsync on, as Herald
// runs) and one endpoint subscribed to everything.
func benchStore(b *testing.B) *Store {
	b.Helper()
	s, err := Open(filepath.Join(b.TempDir(), "state.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	data, err := EncodeBatch([]Command{createEndpoint(epID("bench"), "https://bench.example/hook", t0)})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Apply([]Entry{{Index: 1, Data: data}}); err != nil {
		b.Fatal(err)
	}
	return s
}

// benchEnvelope is a 1 KiB envelope in json.Marshal's compact form.
func benchEnvelope(n int) json.RawMessage {
	head := fmt.Sprintf(`{"type":"batch.succeeded","version":"v1","timestamp":"2030-01-02T03:04:05Z","data":{"n":%d,"pad":"`, n)
	return json.RawMessage(head + strings.Repeat("x", 1024-len(head)-3) + `"}}`)
}

// enqueueEntry encodes benchBatch enqueues of fresh messages.
func enqueueEntry(b *testing.B, g *ids, index uint64, at int64) (Entry, []string) {
	return enqueueEntryIn(b, g, index, at, "")
}

// enqueueEntryIn is enqueueEntry in a tenant.
func enqueueEntryIn(b *testing.B, g *ids, index uint64, at int64, tenant string) (Entry, []string) {
	b.Helper()
	cmds := make([]Command, benchBatch)
	msgs := make([]string, benchBatch)
	for i := range cmds {
		id := g.next(b, "msg", at)
		msgs[i] = id
		cmds[i] = Command{Enqueue: &Enqueue{Tenant: tenant, ID: id, Type: "batch.succeeded", CreatedAt: at, Envelope: benchEnvelope(i)}}
	}
	data, err := EncodeBatch(cmds)
	if err != nil {
		b.Fatal(err)
	}
	return Entry{Index: index, Data: data}, msgs
}

// reportPerMessage reports the timed work per message (the timer runs
// only around Apply of the measured entries).
func reportPerMessage(b *testing.B) {
	elapsed := b.Elapsed()
	msgs := float64(b.N * benchBatch)
	b.ReportMetric(float64(elapsed.Nanoseconds())/msgs, "ns/msg")
	b.ReportMetric(msgs/elapsed.Seconds(), "msgs/s")
}

// BenchmarkApplyEnqueueBatch applies one entry of 100 enqueues (1 KiB
// envelopes, fanned out to one endpoint) per iteration, fsync on. Encoding
// the entry is the leader's work and is not timed.
func BenchmarkApplyEnqueueBatch(b *testing.B) {
	s := benchStore(b)
	g := newIDs(50)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e, _ := enqueueEntry(b, g, uint64(i+2), t0+ms(int64(i)))
		b.StartTimer()
		if _, err := s.Apply([]Entry{e}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportPerMessage(b)
}

// BenchmarkApplyOutcomeBatch applies one entry of 100 attempt outcomes
// per iteration (80 successes, 20 retries), fsync on. The enqueues that
// create the deliveries are applied untimed.
func BenchmarkApplyOutcomeBatch(b *testing.B) {
	s := benchStore(b)
	g := newIDs(51)
	index := uint64(1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		at := t0 + ms(int64(i))
		index++
		e, msgs := enqueueEntry(b, g, index, at)
		if _, err := s.Apply([]Entry{e}); err != nil {
			b.Fatal(err)
		}
		cmds := make([]Command, benchBatch)
		for j, m := range msgs {
			if j%5 == 0 {
				cmds[j] = outcome(DeliveryID(m, 0), 1, at+ms(1), ResultRetry, 503, at+ms(1000))
			} else {
				cmds[j] = outcome(DeliveryID(m, 0), 1, at+ms(1), ResultSucceeded, 200, 0)
			}
		}
		data, err := EncodeBatch(cmds)
		if err != nil {
			b.Fatal(err)
		}
		index++
		b.StartTimer()
		if _, err := s.Apply([]Entry{{Index: index, Data: data}}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportPerMessage(b)
}

// BenchmarkValidate measures the checks Apply makes of every command, for
// the commands that dominate the log: an enqueue (with override URIs, the
// dearest kind) and an outcome.
func BenchmarkValidate(b *testing.B) {
	m := newIDs(52).next(b, "msg", t0)
	for name, c := range map[string]Command{
		"enqueue":          withKey(fanOut(m, "batch.succeeded", t0), "key-123", t0+ms(1000)),
		"enqueue_override": override(m, "batch.succeeded", t0, "https://a.example/hook", "https://b.example/hook"),
		"outcome":          outcome(DeliveryID(m, 0), 1, t0, ResultRetry, 503, t0+ms(5000)),
	} {
		if c.Enqueue != nil {
			c.Enqueue.Envelope = benchEnvelope(0)
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if err := c.Validate(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEnqueueFanOutTenants applies one entry of 100 enqueues per
// iteration, each fanned out in its tenant, fsync off (the cost of the
// apply itself): against one endpoint; against the two endpoints of a
// tenant alone; and against the same two among 100,000 endpoints of
// 50,000 tenants (each with an endpoint taking every type and one
// subscribed to the type). The per-message cost must not grow with the
// other tenants' endpoints.
func BenchmarkEnqueueFanOutTenants(b *testing.B) {
	for _, bc := range []struct {
		name    string
		tenants int // of two endpoints each; 0: one endpoint in the default tenant
	}{
		{"1_endpoint", 0},
		{"2_endpoints_1_tenant", 1},
		{"2_of_100000_endpoints_50000_tenants", 50_000},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "state.db"), Options{NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			g := newIDs(53)
			tenant, index := DefaultTenant, uint64(0)
			apply := func(cmds []Command) {
				index++
				data, err := EncodeBatch(cmds)
				if err != nil {
					b.Fatal(err)
				}
				res, err := s.Apply([]Entry{{Index: index, Data: data}})
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range res[0] {
					if r.Err != nil {
						b.Fatal(r.Err)
					}
				}
			}
			if bc.tenants == 0 {
				apply([]Command{createEndpoint(g.next(b, "ep", t0), "https://bench.example/hook", t0)})
			}
			var cmds []Command
			for i := range bc.tenants {
				t := fmt.Sprintf("t%05d", i)
				cmds = append(cmds,
					inTenant(t, createEndpoint(g.next(b, "ep", t0), "https://all.example/hook", t0)),
					inTenant(t, createEndpoint(g.next(b, "ep", t0), "https://typed.example/hook", t0, "x", "batch.succeeded")))
				if len(cmds) == MaxCommandsPerEntry || i == bc.tenants-1 {
					apply(cmds)
					cmds = cmds[:0]
				}
			}
			if bc.tenants > 0 {
				tenant = fmt.Sprintf("t%05d", bc.tenants/2)
			}
			var last string
			for b.Loop() {
				b.StopTimer()
				index++
				e, msgs := enqueueEntryIn(b, g, index, t0+ms(int64(index)), tenant)
				last = msgs[len(msgs)-1]
				b.StartTimer()
				if _, err := s.Apply([]Entry{e}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			want := 2
			if bc.tenants == 0 {
				want = 1
			}
			if _, ds, err := s.Message(tenant, last); err != nil || len(ds) != want {
				b.Fatalf("the last message has %d deliveries, want %d: %v", len(ds), want, err)
			}
			reportPerMessage(b)
		})
	}
}

// BenchmarkEncodeBatch encodes one entry of 100 enqueues of 1 KiB, the
// leader's work for each log entry of a busy enqueue path.
func BenchmarkEncodeBatch(b *testing.B) {
	g := newIDs(52)
	cmds := make([]Command, benchBatch)
	for i := range cmds {
		cmds[i] = Command{Enqueue: &Enqueue{ID: g.next(b, "msg", t0), Type: "batch.succeeded", CreatedAt: t0, Envelope: benchEnvelope(i)}}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeBatch(cmds); err != nil {
			b.Fatal(err)
		}
	}
}
