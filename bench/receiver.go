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

	bufs sync.Pool // *[]byte: request bodies

	mu         sync.Mutex // guards the fields below
	ids        map[string]arrivals
	delivered  int // ids answered 2xx at least once
	duplicates int // ids that arrived again after a 2xx
	requests   int
	badSigs    int
}

// arrivals is what a receiver knows of one webhook-id.
type arrivals struct {
	first    time.Time // when it was first answered 2xx; zero until then
	n        int       // arrivals so far
	repeated bool      // it arrived again after a 2xx
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
		ids: map[string]arrivals{}}
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
	bp := r.body()
	defer r.bufs.Put(bp)
	body, err := readBody(*bp, req)
	*bp = body[:0]
	if err != nil {
		return
	}
	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	a := r.ids[id]
	n := a.n
	a.n++
	if !a.first.IsZero() && !a.repeated {
		a.repeated = true
		r.duplicates++
	}
	r.ids[id] = a
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
		if a := r.ids[id]; a.first.IsZero() {
			a.first = now
			r.ids[id] = a
			r.delivered++
		}
		r.mu.Unlock()
	}
	w.WriteHeader(status)
}

// body returns a buffer for a request body.
func (r *Receiver) body() *[]byte {
	if bp, ok := r.bufs.Get().(*[]byte); ok {
		return bp
	}
	return new([]byte)
}

// readBody reads req's body into buf, sized by its Content-Length when it
// has one.
func readBody(buf []byte, req *http.Request) ([]byte, error) {
	if n := req.ContentLength; n >= 0 && n <= maxRawBody {
		buf = growTo(buf, int(n))
		if _, err := io.ReadFull(req.Body, buf); err != nil {
			return buf[:0], err
		}
		return buf, nil
	}
	return readAllInto(buf[:0], req.Body)
}

// URL is the receiver's base URL.
func (r *Receiver) URL() string { return "http://" + r.ln.Addr().String() }

// Delivered returns when id was first answered 2xx.
func (r *Receiver) Delivered(id string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.ids[id]
	return a.first, !a.first.IsZero()
}

// Counts returns how many ids were delivered (answered 2xx at least once),
// how many requests arrived in all, how many ids arrived again after a 2xx
// (duplicates), and how many sampled signatures failed to verify.
func (r *Receiver) Counts() (delivered, requests, duplicates, badSigs int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.delivered, r.requests, r.duplicates, r.badSigs
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
