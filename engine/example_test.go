package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"time"

	"github.com/heraldhq/herald/engine"
	"github.com/heraldhq/herald/signer"
)

// Embedding Herald: open an engine on a data directory (a one-node
// cluster), register a customer's endpoint, hand it a message when a job
// finishes, and read the message's status.
func Example() {
	// The customer's webhook receiver, which checks every signature.
	var verifier atomic.Pointer[signer.Verifier] // set once the endpoint exists
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := verifier.Load().Verify(r.Header, body); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()

	dir, err := os.MkdirTemp("", "herald-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := engine.Open(ctx, engine.Config{
		DataDir:   dir,
		NoNetwork: true, // a single node that opens no port
		// The receiver above listens on loopback, which the SSRF guard
		// would otherwise refuse.
		AllowPrivateNetworks: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	// Writes need a leader: a fresh single node elects itself in well
	// under a second.
	if err := e.WaitReady(ctx); err != nil {
		log.Fatal(err)
	}

	ep, err := e.CreateEndpoint(ctx, engine.EndpointInput{URL: receiver.URL, EventTypes: []string{"batch.succeeded"}})
	if err != nil {
		log.Fatal(err)
	}
	// The full secret is shown only now; the customer keeps it to verify.
	v, err := signer.NewVerifier(signer.VerifierConfig{Secrets: []string{ep.Secret}})
	if err != nil {
		log.Fatal(err)
	}
	verifier.Store(v)

	// Enqueue returns once the message is committed. The idempotency key
	// makes a retried call (after a crash, say) return the same message.
	in := engine.MessageInput{
		Type:           "batch.succeeded",
		Data:           json.RawMessage(`{"batch_id":"b_123"}`),
		IdempotencyKey: "batch-b_123-succeeded",
	}
	msg, created, err := e.Enqueue(ctx, in)
	if err != nil {
		log.Fatal(err)
	}
	again, created2, err := e.Enqueue(ctx, in)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("created:", created, "then:", created2, "same message:", again.ID == msg.ID)

	for {
		m, err := e.Message(ctx, "", msg.ID)
		if err != nil {
			log.Fatal(err)
		}
		if m.Status != "pending" {
			d := m.Deliveries[0]
			fmt.Printf("%s: HTTP %d after %d attempt(s)\n", m.Status, d.LastStatusCode, d.AttemptCount)
			break
		}
		select {
		case <-ctx.Done():
			log.Fatal("not delivered")
		case <-time.After(10 * time.Millisecond):
		}
	}
	// Output:
	// created: true then: false same message: true
	// succeeded: HTTP 204 after 1 attempt(s)
}
