package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// okTransport answers every attempt 200 at once, without a network.
type okTransport struct{ n *atomic.Int64 }

func (t okTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	io.Copy(io.Discard, r.Body)
	r.Body.Close()
	t.n.Add(1)
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
}

// BenchmarkEnqueueToDelivery measures the whole path in one process: 48
// concurrent enqueues of 1 KiB messages through Raft and bbolt, and their
// delivery. ns/op is per message. "loopback" delivers over HTTP to a local
// receiver; "fake-transport" isolates Herald's own cost (Raft, bbolt,
// scheduling, dispatch, signing) from the network's.
func BenchmarkEnqueueToDelivery(b *testing.B) {
	for _, mode := range []string{"loopback", "fake-transport"} {
		b.Run(mode, func(b *testing.B) {
			var delivered atomic.Int64
			url := "http://receiver.invalid/hook"
			e := openEngine(b, func(c *Config) {
				c.Logger = nil
				if mode == "fake-transport" {
					c.Transport = okTransport{&delivered}
				}
			})
			if mode == "loopback" {
				url = newReceiver(b, func(int, http.ResponseWriter, *http.Request) { delivered.Add(1) }).URL
			}
			ctx := context.Background()
			if _, err := e.CreateEndpoint(ctx, EndpointInput{URL: url}); err != nil {
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
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
