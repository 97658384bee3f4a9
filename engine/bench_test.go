package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkEnqueueToDelivery measures the whole path in one process: 48
// concurrent enqueues of 1 KiB messages through Raft and bbolt, and their
// delivery to a local receiver. ns/op is per message.
func BenchmarkEnqueueToDelivery(b *testing.B) {
	e := openEngine(b, func(c *Config) { c.Logger = nil })
	var delivered atomic.Int64
	rc := newReceiver(b, func(int, http.ResponseWriter, *http.Request) { delivered.Add(1) })
	ctx := context.Background()
	if _, err := e.CreateEndpoint(ctx, EndpointInput{URL: rc.URL}); err != nil {
		b.Fatal(err)
	}
	data := json.RawMessage(fmt.Sprintf(`{"pad":%q}`, strings.Repeat("x", 1000)))
	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for range 48 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if _, _, err := e.Enqueue(ctx, MessageInput{Type: "bench.done", Data: data}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(time.Minute)
	for delivered.Load() < int64(b.N) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // polling interval
	}
}
