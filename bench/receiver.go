package bench

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/heraldhq/herald/signer"
)

// Receiver is a local webhook receiver that records when each webhook-id
// first arrived and how often it came.
type Receiver struct {
	srv *http.Server
	ln  net.Listener
	// Respond, if set, picks the status for the n-th arrival (0-based) of
	// id; returning 0 hangs until the client gives up. Nil answers 200.
	respond func(id string, n int) int
	// verify, if set, checks the signature of every sampleEvery-th request.
	verify      *signer.Verifier
	sampleEvery int

	mu       sync.Mutex // guards the fields below
	first    map[string]time.Time
	arrivals map[string]int
	repeats  map[string]int // arrivals after the first 2xx
	requests int
	badSigs  int
}

// ReceiverConfig configures a Receiver.
type ReceiverConfig struct {
	// Respond picks the status for the n-th arrival of id: 0 hangs. Nil
	// always answers 200.
	Respond func(id string, n int) int
	// Verifier, if set, checks every SampleEvery-th request's signature
	// (SampleEvery defaults to 1).
	Verifier    *signer.Verifier
	SampleEvery int
}

// NewReceiver starts a receiver on a free loopback port.
func NewReceiver(cfg ReceiverConfig) (*Receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if cfg.SampleEvery == 0 {
		cfg.SampleEvery = 1
	}
	r := &Receiver{ln: ln, respond: cfg.Respond, verify: cfg.Verifier, sampleEvery: cfg.SampleEvery,
		first: map[string]time.Time{}, arrivals: map[string]int{}, repeats: map[string]int{}}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 10 * time.Second}
	go r.srv.Serve(ln)
	return r, nil
}

// SetVerifier starts checking signatures (for receivers whose endpoint
// secret is known only after they start).
func (r *Receiver) SetVerifier(v *signer.Verifier, every int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.verify, r.sampleEvery = v, max(every, 1)
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	n := r.arrivals[id]
	r.arrivals[id] = n + 1
	if _, ok := r.first[id]; ok {
		r.repeats[id]++
	}
	r.requests++
	verify := r.verify != nil && r.requests%r.sampleEvery == 0
	v := r.verify
	r.mu.Unlock()

	status := http.StatusOK
	if r.respond != nil {
		status = r.respond(id, n)
	}
	if status == 0 {
		<-req.Context().Done()
		return
	}
	if verify && v.Verify(req.Header, body) != nil {
		r.mu.Lock()
		r.badSigs++
		r.mu.Unlock()
		status = http.StatusUnauthorized
	}
	if status >= 200 && status < 300 {
		r.mu.Lock()
		if _, ok := r.first[id]; !ok {
			r.first[id] = now
		}
		r.mu.Unlock()
	}
	w.WriteHeader(status)
}

// URL is the receiver's base URL.
func (r *Receiver) URL() string { return "http://" + r.ln.Addr().String() }

// Delivered returns when id was first answered 2xx.
func (r *Receiver) Delivered(id string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.first[id]
	return t, ok
}

// Counts returns how many ids were delivered (answered 2xx at least once),
// how many requests arrived in all, how many ids arrived again after a 2xx
// (duplicates), and how many sampled signatures failed to verify.
func (r *Receiver) Counts() (delivered, requests, duplicates, badSigs int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.first), r.requests, len(r.repeats), r.badSigs
}

// Close stops the receiver.
func (r *Receiver) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil {
		return r.srv.Close()
	}
	return nil
}
