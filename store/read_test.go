package store

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
)

func TestQueueDue(t *testing.T) {
	s := openTest(t)
	g := newIDs(20)
	runOK(t, s, createEndpoint(epID("a"), "https://a.example", t0))
	// 30 overrides to two URIs of one origin, with due times that repeat
	// and arrive out of order, and 10 to another origin.
	var want []Due
	for i := range 40 {
		at := t0 + ms(int64(i))
		m := g.next(t, "msg", at)
		uri, queue := "https://o.example/a", "https://o.example:443"
		switch {
		case i >= 30:
			uri, queue = "http://p.example:8080/hook", "http://p.example:8080"
		case i%3 == 1:
			uri = "https://o.example:443/b?x=1"
		}
		runOK(t, s, override(m, "x", at, uri))
		next := t0 + ms(int64((i*7)%10)*100) // ten distinct times
		runOK(t, s, outcome(DeliveryID(m, 0), 1, at, ResultRetry, 500, next))
		want = append(want, Due{DeliveryID: DeliveryID(m, 0), At: next, Queue: queue})
	}
	m := g.next(t, "msg", t0)
	runOK(t, s, fanOut(m, "x", t0))
	want = append(want, Due{DeliveryID: DeliveryID(m, 0), At: t0, Queue: epID("a")})
	slices.SortFunc(want, func(a, b Due) int {
		return cmp.Or(cmp.Compare(a.Queue, b.Queue), cmp.Compare(a.At, b.At), cmp.Compare(a.DeliveryID, b.DeliveryID))
	})
	byQueue := map[string][]Due{}
	var heads []Due
	for _, d := range want {
		if len(byQueue[d.Queue]) == 0 {
			heads = append(heads, d)
		}
		byQueue[d.Queue] = append(byQueue[d.Queue], d)
	}

	for _, limit := range []int{1, 2, 3, 10} {
		var got []Due
		after := ""
		for {
			page, err := s.QueueHeads(after, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > limit {
				t.Fatalf("limit %d: page of %d", limit, len(page))
			}
			if len(page) == 0 {
				break
			}
			got = append(got, page...)
			after = page[len(page)-1].Queue
		}
		if !slices.Equal(got, heads) {
			t.Fatalf("limit %d: heads\n%v\nwant\n%v", limit, got, heads)
		}
	}

	none := func([]byte) bool { return false }
	o := byQueue["https://o.example:443"]
	if len(o) != 30 {
		t.Fatalf("the origin https://o.example:443 has %d", len(o))
	}
	// All of the queue, then up to a time, then a window by a limit.
	w, err := s.QueueDue("https://o.example:443", t0+ms(10_000), 100, none)
	if err != nil || !slices.Equal(w.Due, o) || w.Next != 0 || w.Endpoint != nil {
		t.Fatalf("the whole queue: %+v, %v", w, err)
	}
	w, _ = s.QueueDue("https://o.example:443", t0+ms(300), 100, none)
	if n := 4 * 3; !slices.Equal(w.Due, o[:n]) || w.Next != o[n].At {
		t.Fatalf("due by 300ms: %+v", w)
	}
	w, _ = s.QueueDue("https://o.example:443", t0+ms(10_000), 5, none)
	if !slices.Equal(w.Due, o[:5]) || w.Next != o[5].At {
		t.Fatalf("five: %+v", w)
	}
	// What the caller holds already is left out.
	held := map[string]bool{o[0].DeliveryID: true, o[2].DeliveryID: true}
	w, _ = s.QueueDue("https://o.example:443", t0+ms(10_000), 3, func(id []byte) bool { return held[string(id)] })
	if !slices.Equal(w.Due, []Due{o[1], o[3], o[4]}) || w.Next != o[5].At {
		t.Fatalf("skipping two: %+v", w)
	}
	// An endpoint's queue comes with its endpoint; an empty queue has
	// nothing next.
	w, _ = s.QueueDue(epID("a"), t0, 10, none)
	if len(w.Due) != 1 || w.Endpoint == nil || w.Endpoint.ID != epID("a") {
		t.Fatalf("the endpoint's queue: %+v", w)
	}
	runOK(t, s, outcome(DeliveryID(m, 0), 1, t0, ResultSucceeded, 200, 0))
	if w, _ = s.QueueDue(epID("a"), t0+ms(10_000), 10, none); len(w.Due) != 0 || w.Next != 0 {
		t.Fatalf("an empty queue: %+v", w)
	}
}

func TestOrigin(t *testing.T) {
	for raw, want := range map[string]string{
		"https://a.example/x?y=1":      "https://a.example:443",
		"https://a.example:8443/":      "https://a.example:8443",
		"http://a.example/":            "http://a.example:80",
		"http://[2001:db8::1]/x":       "http://[2001:db8::1]:80",
		"https://[2001:db8::1]:9/x":    "https://[2001:db8::1]:9",
		"https://user@a.example:443/x": "https://a.example:443",
	} {
		if got := Origin(raw); got != want {
			t.Errorf("Origin(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestListMessages(t *testing.T) {
	s := openTest(t)
	g := newIDs(21)
	var all []string // oldest first
	status := map[string]string{}
	results := []string{ResultSucceeded, "", ResultFailed, ResultSucceeded, "", ResultCancelled, ResultSucceeded, "", ResultFailed, ""}
	for i, res := range results {
		at := t0 + ms(int64(i)*10)
		m := g.next(t, "msg", at)
		all = append(all, m)
		runOK(t, s, override(m, "x", at, "https://o.example"))
		switch res {
		case "":
			status[m] = StatusPending
		case ResultSucceeded:
			status[m] = StatusSucceeded
		default:
			status[m] = StatusFailed
		}
		if res != "" {
			runOK(t, s, outcome(DeliveryID(m, 0), 1, at, res, 200, 0))
		}
	}
	newest := slices.Clone(all)
	slices.Reverse(newest)

	idsOf := func(ms []Message) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	for _, filter := range []string{"", StatusPending, StatusSucceeded, StatusFailed, StatusCancelled} {
		var want []string
		for _, id := range newest {
			if filter == "" || status[id] == filter {
				want = append(want, id)
			}
		}
		for _, limit := range []int{1, 3, 100} {
			var got []string
			after := ""
			for {
				page, _, err := s.ListMessages(DefaultTenant, ListFilter{Status: filter}, limit, after)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				if len(page) > limit {
					t.Fatalf("page of %d with limit %d", len(page), limit)
				}
				got = append(got, idsOf(page)...)
				after = page[len(page)-1].ID
			}
			if !slices.Equal(got, want) {
				t.Fatalf("status %q limit %d:\n got %v\nwant %v", filter, limit, got, want)
			}
		}
	}

	cursors := []struct {
		name  string
		after string
		want  []string
	}{
		{"empty starts at the newest", "", newest[:3]},
		{"after the newest", newest[0], newest[1:4]},
		{"after an id past every message", "msg_ZZZZZZZZZZZZZZZZZZZZZZZZZZ", newest[:3]},
		{"after an id between two messages", all[4] + "0", []string{all[4], all[3], all[2]}},
		{"after the oldest", all[0], nil},
		{"after an id before every message", "msg_0", nil},
	}
	for _, c := range cursors {
		got, _, err := s.ListMessages(DefaultTenant, ListFilter{}, 3, c.after)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(idsOf(got), c.want) {
			t.Errorf("%s: %v, want %v", c.name, idsOf(got), c.want)
		}
	}
	if got, _, _ := s.ListMessages(DefaultTenant, ListFilter{}, 0, ""); len(got) != 0 {
		t.Errorf("limit 0 returned %d", len(got))
	}
}

func TestForAttemptAndEnvelope(t *testing.T) {
	s := openTest(t)
	g := newIDs(22)
	runOK(t, s, createEndpoint(epID("a"), "https://a.example", t0))
	m := g.next(t, "msg", t0)
	ov := g.next(t, "msg", t0)
	body := json.RawMessage(`{"type":"x","version":"v1","timestamp":"2030-01-02T03:04:05Z","data":{"q":"\u003cb\u003e","n":[1,2.5e3,null]}}`)
	c := fanOut(m, "x", t0)
	c.Enqueue.Envelope = body
	runOK(t, s, c, override(ov, "x", t0, "https://o.example"))

	av, err := s.ForAttempt(DeliveryID(m, 0))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(av.Envelope, body) || av.Endpoint == nil || av.Endpoint.ID != epID("a") ||
		!slices.Equal(av.Endpoint.LiveSecrets(t0), []string{testSecret(epID("a"))}) || av.Delivery.ID != DeliveryID(m, 0) {
		t.Fatalf("ForAttempt: %+v", av)
	}
	// The returned bytes are the caller's own.
	av.Envelope[0] = 'X'
	if env, _ := s.Envelope(m); !bytes.Equal(env, body) {
		t.Fatalf("Envelope = %s after the caller changed its copy", env)
	}
	av, err = s.ForAttempt(DeliveryID(ov, 0))
	if err != nil || av.Endpoint != nil || !av.Delivery.Override() {
		t.Fatalf("ForAttempt of an override: %+v, %v", av, err)
	}
	if _, err := s.ForAttempt("dlv_nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ForAttempt of an unknown delivery: %v", err)
	}
	if _, err := s.Envelope("msg_nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Envelope of an unknown message: %v", err)
	}
	if _, _, err := s.Message(DefaultTenant, "msg_nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Message of an unknown id: %v", err)
	}
	if _, err := s.Endpoint(DefaultTenant, epID("nope")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Endpoint of an unknown id: %v", err)
	}
}

// TestEnvelopeBytesAfterEncodeBatch pins down what "exact bytes" means:
// EncodeBatch carries the envelope as a json.RawMessage, which
// encoding/json compacts and HTML-escapes. An envelope already in
// json.Marshal's form is stored byte for byte; any other form is stored
// normalized, so the engine must build envelopes with json.Marshal (and
// sign what the store returns, never its own copy).
// TestEnvelopeBytesExactThroughEncodeBatch checks that the envelope goes
// through the log entry byte for byte, whatever its JSON spelling: every
// attempt signs and sends exactly the bytes accepted at enqueue.
func TestEnvelopeBytesExactThroughEncodeBatch(t *testing.T) {
	for i, in := range []string{
		`{"a":"\u003c\u0026\u003e","b":[1,{}]}`,
		"{\"a\": 1,\n \"b\": [ ]}",
		`{"a":"<&>"}`,
		`{"a":"é\u2028"}`,
		"not even JSON \x00\xff",
	} {
		s := openTest(t)
		m := newIDs(uint64(30+i)).next(t, "msg", t0)
		c := override(m, "x", t0, "https://o.example")
		c.Enqueue.Envelope = []byte(in)
		runOK(t, s, c)
		got, err := s.Envelope(m)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != in {
			t.Fatalf("stored %q, want %q", got, in)
		}
	}
}

func TestEndpointsAndKeysListed(t *testing.T) {
	s := openTest(t)
	runOK(t, s,
		createEndpoint(epID("b"), "https://b.example", t0, "x"),
		createEndpoint(epID("a"), "https://a.example", t0),
		signingKey("k2", AlgRS256, t0),
		signingKey("k1", AlgEd25519, t0),
	)
	eps, err := s.Endpoints(DefaultTenant)
	if err != nil || len(eps) != 2 || eps[0].ID != epID("a") || eps[1].ID != epID("b") || !slices.Equal(eps[1].EventTypes, []string{"x"}) {
		t.Fatalf("Endpoints = %+v, %v", eps, err)
	}
	keys, err := s.SigningKeys()
	if err != nil || len(keys) != 2 || keys[0].ID != "k1" || keys[1].ID != "k2" {
		t.Fatalf("SigningKeys = %+v, %v", keys, err)
	}
	if st := s.Stats(); st.FileBytes == 0 {
		t.Fatalf("Stats = %+v", st)
	}
}

// TestReadsDuringApply runs readers against a store being written; with
// -race it checks the locking, and every read must see a consistent state.
func TestReadsDuringApply(t *testing.T) {
	g := newLogGen(t, 8)
	entries := g.generate(150)
	s := openTest(t)
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				var err error
				switch r {
				case 0:
					_, err = s.QueueHeads("", 50)
				case 1:
					var ms []Message
					ms, _, err = s.ListMessages(DefaultTenant, ListFilter{}, 20, "")
					for _, m := range ms {
						if _, ds, e := s.Message(DefaultTenant, m.ID); e == nil && len(ds) != len(m.Deliveries) {
							// Swept between the two reads is fine; a
							// partial message is not.
							if _, _, again := s.Message(DefaultTenant, m.ID); again == nil {
								err = fmt.Errorf("message %s: %d of %d deliveries", m.ID, len(ds), len(m.Deliveries))
							}
						}
					}
				case 2:
					err = s.Check()
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	applyInChunks(t, s, entries, 3)
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	sameDump(t, g.store, s, "applied with concurrent readers")
}
