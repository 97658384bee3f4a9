package store

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// t0 is the time every test scenario starts at (Unix ns, millisecond
// aligned, so ids made at it decode back to it exactly).
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano()

// ms is n milliseconds in Unix nanoseconds.
func ms(n int64) int64 { return n * int64(time.Millisecond) }

func ptr[T any](v T) *T { return &v }

// openTest opens a fresh store in its own temporary directory. Tests of
// logic skip fsync; durability is bbolt's business and the benchmarks keep
// it on.
func openTest(t testing.TB) *Store {
	t.Helper()
	return openPath(t, filepath.Join(t.TempDir(), "state.db"))
}

// openPath opens the store at path and closes it when the test ends.
func openPath(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// ids makes ULIDs from a seeded stream, so a test's ids are the same on
// every run.
type ids struct{ r io.Reader }

func newIDs(seed uint64) *ids {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	return &ids{r: rand.NewChaCha8(s)}
}

func (g *ids) next(t testing.TB, prefix string, at int64) string {
	t.Helper()
	id, err := NewID(prefix, time.Unix(0, at), g.r)
	if err != nil {
		t.Fatalf("NewID: %v", err)
	}
	return id
}

// epID returns a valid endpoint id that spells name (at most 10 bytes) in
// its random part: ids sort as their names do, and tests read as before.
func epID(name string) string {
	if len(name) > 10 {
		panic("epID: name longer than 10 bytes: " + name)
	}
	var b [10]byte
	copy(b[:], name)
	id, err := NewID("ep", time.Unix(0, t0), bytes.NewReader(b[:]))
	if err != nil {
		panic(err)
	}
	return id
}

// testSecret returns a valid whsec_ secret derived from name.
func testSecret(name string) string {
	sum := sha256.Sum256([]byte(name))
	return "whsec_" + base64.StdEncoding.EncodeToString(sum[:])
}

// testRSAKey is a 2048-bit PKCS #1 RSA key, fixed so that fuzz seeds and
// logs are the same on every run.
var testRSAKey = func() []byte {
	der, err := base64.StdEncoding.DecodeString("" +
		"MIIEogIBAAKCAQEAqEmZonxyGGN3IwijcPal/Tjs62AvBYkCrG2rcMgyuZxD2L6lWyRRwnVzCxY3" +
		"Ep8cye/4lLNxkEhZA2sEphYX9ONWehcxGZxY4gY21Rx/c1ah+vgIXZ2+7weaCvJ2ricSb023lYQn" +
		"qeGj+f4WnieQuE4SkINHWqmmdnlEBnL06i6FcrsqSKsvPnwKWc4qFGJmzUXlsjZw94XBflHEyruE" +
		"+50TTAvAJixSjG19cjBLowS0gqgo9UyfB2waWAwO4vJsU3xOfbQSQ9AmqbcpfeBys54vT+3jWdAj" +
		"nqM5Mvk/nreIbXsXjjTc09XDIOUQSukb2vbz3rN1M2U1SBWHnyBKJwIDAQABAoIBAFBezhvWuRrC" +
		"rgwyPPRfJ0j3HdcPmYVYOMmmmsEDK46PfauO6SPNBasMMoQx+N1Q1gvvKlXCGVNh6fkC7DZxyMEw" +
		"rYUjfFSR4bUYaKmAsbGgxz03pa8n/h7kD4J454smp9w2Tp3+fn7Yf1qOKbkghjIvPxh7SeGXsiNU" +
		"qNM3pZYNGXahPjgPSd0Oo3kgeQxmdHUY91+ksF1nAmydEXDRdHTvXPqIYfODif8tn6uVPenhnCE/" +
		"DwnAF9SHE73pdugG1CgLpWz9hxMTahLrXvGHogymzr5bI8UKgqmIs9oZe6p+diDhmiyzdq9EBEwe" +
		"MYiaCgVo4gb4A+JGMm9kOYcPZgkCgYEAztG0NpEhqpo9SzmqLNKaOaBq5eSLtVFL2T75T7JkTAg3" +
		"fHED2qyWJLJtXPzAxXsPX05/byc+Hb/KfxMJo/8WDe0DplYYKg7YRhaxGqy2BsjkFb2EcA2oi7/x" +
		"BzMor9Oe6pQD0w/RnGytYBfo3Hjj8bSL4r5xCfy7/kKNrRWwSmMCgYEA0E4/hTrsXTT6zD8yhbHf" +
		"mDhA9xRTiOWUOzQnA4tl5MaTkKxIrf8XX4jAbbnIE28YtSm6pexC40tBYm6853q8bXWMEgM4YeAY" +
		"3u11CLdY9ulWcQv/Df0d89HgVsyLfY/pHXMyGIc1Mx0wD/+/MmHtllDkuoJ/ydHV7LeYFwkwSm0C" +
		"gYB/EeURqbXvpfiG4ZUnGPZc9az4NqWH770Ua1aumsJ43IuKz704e9V8EoyTF1AxhVx6iDZPyuKl" +
		"UJNP5BiGRFH+mGMnrboHDTvgREzoQLlODdvlZ52ZYyrtQi8K52nWLcV0ByEaapu06ijT45zU6QnU" +
		"FcPkunGlWzz+CVIWyD6aVQKBgG+pcl1935R7QPHZ8sA+QGi9xv1r1PeucY5m/37j68P+Or4zzGYR" +
		"NztL+DMZgsoAJNOAQgCNrLFg9vTH/dVsMrPObj59oWy+Dzb5PWJlvnflTyQcVSXviG3aFJMS5Ldz" +
		"PHg/9xu05uy2ebwp0Rk164FHbcUZDV1ncXCKXioDD/LlAoGAEA+FxTN4TKj6ukVNJPPOMIBPNJf0" +
		"z0HVNnSJZXHPTsoSSIAZHhSnMj0okAL7/2zyAnuNY3HG0xIFAULYUr2m94fHW6lWGHWmEkLSg851" +
		"PZSpOvrZPXA7hYJ92rlJXbsqmLsQNwEuKYn6Gk6aDxmGUN6elxRCLL5NN05xc1j2VzQ=",
	)
	if err != nil {
		panic(err)
	}
	return der
}()

// testPrivate returns a valid private key for alg.
func testPrivate(alg string) []byte {
	if alg == AlgRS256 {
		return testRSAKey
	}
	seed := sha256.Sum256([]byte("ed25519 test seed"))
	return seed[:]
}

// signingKey is a valid AddSigningKey command.
func signingKey(id, alg string, at int64) Command {
	return Command{AddSigningKey: &AddSigningKey{Key: SigningKey{ID: id, Alg: alg, Private: testPrivate(alg), CreatedAt: at}}}
}

// entry encodes cmds as the log entry at index.
func entry(t testing.TB, index uint64, cmds ...Command) Entry {
	t.Helper()
	data, err := EncodeBatch(cmds)
	if err != nil {
		t.Fatalf("EncodeBatch: %v", err)
	}
	return Entry{Index: index, Data: data}
}

// run applies cmds as the next log entry, checks the store's invariants,
// and returns the per-command results.
func run(t testing.TB, s *Store, cmds ...Command) []Result {
	t.Helper()
	idx, err := s.AppliedIndex()
	if err != nil {
		t.Fatalf("AppliedIndex: %v", err)
	}
	res, err := s.Apply([]Entry{entry(t, idx+1, cmds...)})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	mustCheck(t, s)
	if len(res) != 1 || len(res[0]) != len(cmds) {
		t.Fatalf("Apply returned %d results for one entry of %d commands: %+v", len(res), len(cmds), res)
	}
	return res[0]
}

// runOK is run for commands that must all be accepted.
func runOK(t testing.TB, s *Store, cmds ...Command) []Result {
	t.Helper()
	res := run(t, s, cmds...)
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("command %d (%s) rejected: %v", i, kindOf(&cmds[i]), r.Err)
		}
	}
	return res
}

// invalidField returns the field an *InvalidError names, or "" for any
// other error.
func invalidField(err error) string {
	var inv *InvalidError
	if errors.As(err, &inv) {
		return inv.Field
	}
	return ""
}

func mustCheck(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
}

func mustDump(t testing.TB, s *Store) map[string]map[string]string {
	t.Helper()
	d, err := s.Dump()
	if err != nil {
		t.Fatalf("Dump: %v", err)
	}
	return d
}

// diffDumps describes how two dumps differ (at most a few lines), or
// returns "" when they are identical.
func diffDumps(a, b map[string]map[string]string) string {
	var out []string
	names := map[string]bool{}
	for n := range a {
		names[n] = true
	}
	for n := range b {
		names[n] = true
	}
	for _, n := range slices.Sorted(maps.Keys(names)) {
		ba, bb := a[n], b[n]
		keys := map[string]bool{}
		for k := range ba {
			keys[k] = true
		}
		for k := range bb {
			keys[k] = true
		}
		for k := range keys {
			va, oka := ba[k]
			vb, okb := bb[k]
			switch {
			case !oka:
				out = append(out, fmt.Sprintf("%s[%q]: only in second: %s", n, k, vb))
			case !okb:
				out = append(out, fmt.Sprintf("%s[%q]: only in first: %s", n, k, va))
			case va != vb:
				out = append(out, fmt.Sprintf("%s[%q]:\n\tfirst:  %s\n\tsecond: %s", n, k, va, vb))
			}
		}
	}
	if len(out) == 0 {
		return ""
	}
	slices.Sort(out)
	if len(out) > 8 {
		out = append(out[:8], fmt.Sprintf("… and %d more", len(out)-8))
	}
	return strings.Join(out, "\n")
}

func sameDump(t testing.TB, want, got *Store, what string) {
	t.Helper()
	if d := diffDumps(mustDump(t, want), mustDump(t, got)); d != "" {
		t.Fatalf("%s: dumps differ:\n%s", what, d)
	}
}

// getMessage reads a message and its deliveries, failing the test if absent.
func getMessage(t testing.TB, s *Store, id string) (*Message, []Delivery) {
	t.Helper()
	m, ds, err := s.Message(DefaultTenant, id)
	if err != nil {
		t.Fatalf("Message(%s): %v", id, err)
	}
	return m, ds
}

// getDelivery reads one delivery record straight from the file.
func getDelivery(t testing.TB, s *Store, id string) *Delivery {
	t.Helper()
	var d Delivery
	err := s.view(func(tx *bolt.Tx) error {
		ok, err := getRecord(tx.Bucket(bDeliveries), id, &d)
		if err == nil && !ok {
			err = ErrNotFound
		}
		return err
	})
	if err != nil {
		t.Fatalf("delivery %s: %v", id, err)
	}
	return &d
}

func getEndpoint(t testing.TB, s *Store, id string) *Endpoint {
	t.Helper()
	ep, err := s.Endpoint(DefaultTenant, id)
	if err != nil {
		t.Fatalf("Endpoint(%s): %v", id, err)
	}
	return ep
}

// allDue returns the whole due index, queue by queue.
func allDue(t testing.TB, s *Store) []Due {
	t.Helper()
	var all []Due
	after := ""
	for {
		heads, err := s.QueueHeads(after, 100)
		if err != nil {
			t.Fatalf("QueueHeads: %v", err)
		}
		if len(heads) == 0 {
			return all
		}
		for _, h := range heads {
			w, err := s.QueueDue(h.Queue, math.MaxInt64, math.MaxInt, func([]byte) bool { return false })
			if err != nil {
				t.Fatalf("QueueDue: %v", err)
			}
			all = append(all, w.Due...)
		}
		after = heads[len(heads)-1].Queue
	}
}

// earliestDue returns the earliest due time of any pending delivery.
func earliestDue(t testing.TB, s *Store) (int64, bool) {
	heads, err := s.QueueHeads("", math.MaxInt)
	if err != nil {
		t.Fatalf("QueueHeads: %v", err)
	}
	if len(heads) == 0 {
		return 0, false
	}
	return slices.MinFunc(heads, func(a, b Due) int { return cmp.Compare(a.At, b.At) }).At, true
}

// Command constructors.

func createEndpoint(id, url string, at int64, types ...string) Command {
	return Command{CreateEndpoint: &CreateEndpoint{Endpoint: Endpoint{
		ID: id, URL: url, EventTypes: types, State: StateEnabled,
		Secrets: []Secret{{Key: testSecret(id)}}, CreatedAt: at, UpdatedAt: at,
	}}}
}

// envelope is a small, valid envelope in the compact form json.Marshal
// produces (so it survives EncodeBatch byte for byte).
func envelope(typ string, at int64, n int) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"type":%q,"version":"v1","timestamp":%q,"data":{"n":%d}}`,
		typ, time.Unix(0, at).UTC().Format(time.RFC3339), n))
}

// fanOut enqueues a message to every subscribed endpoint.
func fanOut(id, typ string, at int64) Command {
	return Command{Enqueue: &Enqueue{ID: id, Type: typ, CreatedAt: at, Envelope: envelope(typ, at, 0)}}
}

func override(id, typ string, at int64, uris ...string) Command {
	c := fanOut(id, typ, at)
	c.Enqueue.URIs = uris
	return c
}

func ping(id string, at int64, endpointIDs ...string) Command {
	c := fanOut(id, "webhook.ping", at)
	c.Enqueue.EndpointIDs = endpointIDs
	return c
}

func withKey(c Command, key string, expiresAt int64) Command {
	c.Enqueue.IdempotencyKey = key
	c.Enqueue.IdempotencyExpiresAt = expiresAt
	return c
}

func outcome(dlv string, attempt int, at int64, result string, code int, next int64) Command {
	o := &Outcome{DeliveryID: dlv, Attempt: attempt, At: at, DurationMS: 12, StatusCode: code, Result: result, NextAttemptAt: next}
	if code == 0 || code >= 300 {
		o.Error = fmt.Sprintf("attempt %d: status %d", attempt, code)
	}
	return Command{Outcome: o}
}

func kindOf(c *Command) string {
	switch {
	case c.Enqueue != nil:
		return "enqueue"
	case c.Outcome != nil:
		return "outcome:" + c.Outcome.Result
	case c.CreateEndpoint != nil:
		return "create_endpoint"
	case c.UpdateEndpoint != nil:
		return "update_endpoint"
	case c.DeleteEndpoint != nil:
		return "delete_endpoint"
	case c.RotateSecret != nil:
		return "rotate_secret"
	case c.Requeue != nil:
		if c.Requeue.MessageID != "" {
			return "requeue:message"
		}
		return "requeue:window"
	case c.AddSigningKey != nil:
		return "add_signing_key"
	case c.Sweep != nil:
		return "sweep"
	case c.PutNode != nil:
		return "put_node"
	case c.DeleteTenant != nil:
		return "delete_tenant"
	case c.CreateTenantToken != nil:
		return "create_tenant_token"
	case c.RevokeTenantTokens != nil:
		return "revoke_tenant_tokens"
	case c.EnqueueBatch != nil:
		return "enqueue_batch"
	}
	return "empty"
}

// logGen writes a realistic command log the way a leader would: it looks
// at the state so far (a reference store that applies each entry as it is
// written) to choose outcomes with the right attempt numbers, requeues of
// messages that failed, and so on. Randomness is seeded, so a log is the
// same on every run. With tenants, commands act in several tenants (the
// empty one, which is the default, among them), now and then name a
// record of another tenant, and the tenant commands come in; without, the
// log is one a build before tenants could have written.
type logGen struct {
	t       testing.TB
	rng     *rand.Rand
	ids     *ids
	store   *Store
	entries []Entry
	now     int64
	tenants bool

	endpoints []string          // every id ever created, deleted ones included
	messages  []string          // every id ever enqueued
	tenantOf  map[string]string // endpoint and message ids → their tenant
	keys      []string          // idempotency keys used so far
	nEP, nKey int
	nToken    int
	kinds     map[string]int // commands written, by kind
}

func newLogGen(t testing.TB, seed uint64) *logGen {
	return &logGen{
		t:        t,
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		ids:      newIDs(seed),
		store:    openTest(t),
		now:      t0,
		tenants:  true,
		tenantOf: map[string]string{},
		kinds:    map[string]int{},
	}
}

// newLogGenV0 writes logs without tenants.
func newLogGenV0(t testing.TB, seed uint64) *logGen {
	g := newLogGen(t, seed)
	g.tenants = false
	return g
}

var logTenants = []string{"", DefaultTenant, "acme", "globex"}

// tenant picks a tenant for a new record.
func (g *logGen) tenant() string {
	if !g.tenants {
		return ""
	}
	return g.pick(logTenants)
}

// ref returns the tenant of a record, or now and then another tenant's,
// as a client that names an id of another tenant would.
func (g *logGen) ref(id string) string {
	if g.tenants && g.rng.IntN(10) == 0 {
		return g.pick(logTenants)
	}
	return g.tenantOf[id]
}

var eventTypes = []string{"batch.succeeded", "batch.failed", "invoice.paid", "video.rendered"}

// commit appends cmds as the next entry and applies it to the reference.
func (g *logGen) commit(cmds ...Command) []Result {
	g.t.Helper()
	e := entry(g.t, uint64(len(g.entries)+1), cmds...)
	if len(cmds) == 0 {
		e.Data = nil // a Raft configuration entry: no commands
	}
	g.entries = append(g.entries, e)
	res, err := g.store.Apply([]Entry{e})
	if err != nil {
		g.t.Fatalf("reference Apply of entry %d: %v", e.Index, err)
	}
	for i := range cmds {
		g.kinds[kindOf(&cmds[i])]++
		if f := invalidField(res[0][i].Err); f != "" {
			// A leader writes only valid commands; the fuzzer covers
			// the rest.
			g.t.Fatalf("entry %d command %d (%s): %v", e.Index, i, kindOf(&cmds[i]), res[0][i].Err)
		}
	}
	return res[0]
}

func (g *logGen) tick() { g.now += ms(1 + g.rng.Int64N(4000)) }

func (g *logGen) newEndpoint() Command {
	g.nEP++
	id := epID(fmt.Sprintf("n%03d", g.nEP))
	g.endpoints = append(g.endpoints, id)
	var types []string
	for _, et := range eventTypes {
		if g.rng.IntN(3) == 0 {
			types = append(types, et)
		}
	}
	c := createEndpoint(id, fmt.Sprintf("https://recv%d.example/hook", g.nEP), g.now, types...)
	c.CreateEndpoint.Endpoint.Tenant = g.tenant()
	g.tenantOf[id] = c.CreateEndpoint.Endpoint.Tenant
	return c
}

func (g *logGen) pick(list []string) string { return list[g.rng.IntN(len(list))] }

func (g *logGen) enqueue() Command {
	typ := g.pick(eventTypes)
	var c Command
	if len(g.messages) > 0 && g.rng.IntN(25) == 0 {
		// A retried command whose first try was committed.
		id := g.pick(g.messages)
		c = fanOut(id, typ, g.now)
		c.Enqueue.Tenant = g.ref(id)
		return c
	}
	id := g.ids.next(g.t, "msg", g.now)
	g.messages = append(g.messages, id)
	tenant := g.tenant()
	switch r := g.rng.IntN(10); {
	case r < 6:
		c = fanOut(id, typ, g.now)
	case r < 8:
		uris := []string{"https://override.example/a"}
		if g.rng.IntN(2) == 0 {
			uris = append(uris, "https://override.example/b")
		}
		c = override(id, typ, g.now, uris...)
	default:
		ep := g.pick(g.endpoints)
		c = ping(id, g.now, ep)
		tenant = g.ref(ep)
	}
	c.Enqueue.Tenant = tenant
	g.tenantOf[id] = tenant
	c.Enqueue.Envelope = envelope(typ, g.now, len(g.messages))
	if g.rng.IntN(3) == 0 {
		var key string
		if len(g.keys) > 0 && g.rng.IntN(3) == 0 {
			key = g.pick(g.keys)
		} else {
			g.nKey++
			key = fmt.Sprintf("idem-%d", g.nKey)
			g.keys = append(g.keys, key)
		}
		c = withKey(c, key, g.now+ms(5*60*1000))
	}
	return c
}

// outcomes makes up to n outcomes for distinct pending deliveries.
func (g *logGen) outcomes(n int) []Command {
	due := allDue(g.t, g.store)
	due = due[:min(len(due), 200)]
	g.rng.Shuffle(len(due), func(i, j int) { due[i], due[j] = due[j], due[i] })
	var cmds []Command
	for _, d := range due[:min(n, len(due))] {
		dl := getDelivery(g.t, g.store, d.DeliveryID)
		attempt := dl.AttemptCount + 1
		if g.rng.IntN(12) == 0 && dl.AttemptCount > 0 {
			attempt = dl.AttemptCount // a duplicate report of the last attempt
		}
		at := max(g.now, d.At)
		switch r := g.rng.IntN(100); {
		case r < 40:
			cmds = append(cmds, outcome(dl.ID, attempt, at, ResultSucceeded, 200, 0))
		case r < 75:
			code := []int{500, 503, 302, 0}[g.rng.IntN(4)]
			c := outcome(dl.ID, attempt, at, ResultRetry, code, at+ms(1+g.rng.Int64N(60_000)))
			if g.tenants { // the build before tenants had no breaker
				c.Outcome.OpenBreaker, c.Outcome.Disable = r < 55, r == 74
			}
			cmds = append(cmds, c)
		case r < 87:
			cmds = append(cmds, outcome(dl.ID, attempt, at, ResultFailed, 500, 0))
		case r < 92:
			cmds = append(cmds, outcome(dl.ID, attempt, at, ResultGone, 410, 0))
		default:
			cmds = append(cmds, outcome(dl.ID, attempt, at, ResultCancelled, 0, 0))
		}
	}
	return cmds
}

func (g *logGen) updateEndpoint() Command {
	u := &UpdateEndpoint{ID: g.pick(g.endpoints), At: g.now}
	u.Tenant = g.ref(u.ID)
	switch g.rng.IntN(6) {
	case 0:
		u.State = ptr(StateDisabled)
	case 1:
		u.State = ptr(StateEnabled)
	case 2:
		u.URL = ptr(fmt.Sprintf("https://moved%d.example/hook", g.rng.IntN(1000)))
	case 3:
		u.EventTypes = ptr([]string{g.pick(eventTypes)})
	case 4:
		u.EventTypes = ptr([]string{})
		u.Name = ptr("renamed")
	default:
		u.RateLimitPerS = ptr(g.rng.IntN(100))
		u.URL = ptr(fmt.Sprintf("https://moved%d.example/hook", g.rng.IntN(1000)))
		u.State = ptr(StateEnabled)
	}
	return Command{UpdateEndpoint: u}
}

func (g *logGen) requeue() Command {
	if g.rng.IntN(2) == 0 {
		id := g.pick(g.messages)
		return Command{Requeue: &Requeue{Tenant: g.ref(id), MessageID: id, At: g.now}}
	}
	r := &Requeue{Tenant: g.tenant(), Since: g.now - ms(20*60*1000), At: g.now}
	if g.rng.IntN(2) == 0 {
		r.Until = g.now - ms(2*60*1000)
	}
	return Command{Requeue: r}
}

func (g *logGen) sweep() Command {
	return Command{Sweep: &Sweep{
		At: g.now, RetainSince: g.now - ms(10*60*1000), KeysRetiredBefore: g.now - ms(5*60*1000),
		Limit: 1 + g.rng.IntN(8),
	}}
}

// tenantCommand deletes a tenant (a part of it: the leader would repeat
// the command), or creates or revokes tokens.
func (g *logGen) tenantCommand() Command {
	tenant := g.pick(logTenants[1:])
	switch g.rng.IntN(4) {
	case 0:
		return Command{DeleteTenant: &DeleteTenant{Tenant: g.pick([]string{"acme", "globex"}), At: g.now, Limit: 1 + g.rng.IntN(6)}}
	case 1:
		return Command{RevokeTenantTokens: &RevokeTenantTokens{Tenant: tenant}}
	default:
		return g.token(tenant)
	}
}

func (g *logGen) token(tenant string) Command {
	g.nToken++
	h := sha256.Sum256([]byte(fmt.Sprint("token ", g.nToken)))
	return Command{CreateTenantToken: &CreateTenantToken{Tenant: tenant, Hash: h[:], CreatedAt: g.now,
		ExpiresAt: g.now + ms(1+g.rng.Int64N(10*60*1000))}}
}

func (g *logGen) signingKey() Command {
	alg := []string{AlgEd25519, AlgRS256}[g.rng.IntN(2)]
	return signingKey(g.ids.next(g.t, "key", g.now), alg, g.now)
}

// generate writes a scripted opening that exercises every command and
// outcome kind, then steps random batches. It returns the entries.
func (g *logGen) generate(steps int) []Entry {
	g.t.Helper()
	// Opening: endpoints with and without filters, keys, nodes.
	g.commit(
		Command{PutNode: &Node{ID: "n1", APIAddr: "127.0.0.1:8081", RaftAddr: "127.0.0.1:9081"}},
		createEndpoint(epID("all"), "https://all.example/hook", g.now),
		createEndpoint(epID("batch"), "https://batch.example/hook", g.now, "batch.succeeded", "batch.failed"),
		createEndpoint(epID("inv"), "https://inv.example/hook", g.now, "invoice.paid"),
		g.signingKey(),
	)
	g.endpoints = append(g.endpoints, epID("all"), epID("batch"), epID("inv"))
	if g.tenants {
		acme := createEndpoint(epID("acme"), "https://acme.example/hook", g.now)
		acme.CreateEndpoint.Endpoint.Tenant = "acme"
		globex := createEndpoint(epID("globex"), "https://globex.example/hook", g.now, "batch.failed")
		globex.CreateEndpoint.Endpoint.Tenant = "globex"
		g.commit(acme, globex, g.token("acme"))
		g.endpoints = append(g.endpoints, epID("acme"), epID("globex"))
		g.tenantOf[epID("acme")], g.tenantOf[epID("globex")] = "acme", "globex"
	}
	g.commit() // a configuration change
	g.tick()
	for range 6 {
		g.commit(g.enqueue(), g.enqueue(), g.enqueue())
		g.tick()
	}
	// One of every outcome result, for certain.
	for _, res := range []string{ResultRetry, ResultSucceeded, ResultFailed, ResultGone, ResultCancelled} {
		if cmds := g.outcomes(1); len(cmds) > 0 {
			cmds[0].Outcome.Result = res
			cmds[0].Outcome.OpenBreaker, cmds[0].Outcome.Disable = false, false
			cmds[0].Outcome.Attempt = getDelivery(g.t, g.store, cmds[0].Outcome.DeliveryID).AttemptCount + 1
			if res == ResultRetry {
				cmds[0].Outcome.NextAttemptAt = g.now + ms(1000)
			}
			g.commit(cmds...)
		}
		g.tick()
	}
	g.commit(
		Command{RotateSecret: &RotateSecret{EndpointID: epID("all"), Secret: testSecret("rotated"), At: g.now, RevokeAt: g.now + ms(60_000)}},
		Command{UpdateEndpoint: &UpdateEndpoint{ID: epID("batch"), At: g.now, URL: ptr("https://batch2.example/hook")}},
		g.signingKey(),
		Command{PutNode: &Node{ID: "n2", APIAddr: "127.0.0.1:8082", RaftAddr: "127.0.0.1:9082"}},
	)
	g.tick()
	g.commit(withKey(fanOut(g.ids.next(g.t, "msg", g.now), "batch.failed", g.now), "idem-fixed", g.now+ms(1000)))
	g.commit(withKey(fanOut(g.ids.next(g.t, "msg", g.now), "batch.failed", g.now), "idem-fixed", g.now+ms(1000)))
	g.tick()

	for range steps {
		g.tick()
		if g.tenants && g.rng.IntN(25) == 0 {
			g.commit(g.tenantCommand())
			continue
		}
		switch r := g.rng.IntN(100); {
		case r < 30:
			cmds := make([]Command, 1+g.rng.IntN(8))
			for i := range cmds {
				cmds[i] = g.enqueue()
			}
			g.commit(cmds...)
		case r < 60:
			if cmds := g.outcomes(1 + g.rng.IntN(10)); len(cmds) > 0 {
				g.commit(cmds...)
			}
		case r < 66:
			// The kinds of batch the leader group-commits: outcomes,
			// enqueues and housekeeping in one entry.
			cmds := g.outcomes(3)
			cmds = append(cmds, g.enqueue(), g.requeue(), g.sweep())
			g.commit(cmds...)
		case r < 72:
			g.commit(g.updateEndpoint())
		case r < 74:
			id := g.pick(g.endpoints)
			g.commit(Command{DeleteEndpoint: &DeleteEndpoint{Tenant: g.ref(id), ID: id, At: g.now}})
		case r < 78:
			g.commit(g.newEndpoint())
		case r < 81:
			revoke := g.now + ms(60_000)
			if g.rng.IntN(2) == 0 {
				revoke = g.now
			}
			id := g.pick(g.endpoints)
			g.commit(Command{RotateSecret: &RotateSecret{Tenant: g.ref(id), EndpointID: id,
				Secret: testSecret(fmt.Sprint(g.rng.Uint64())), At: g.now, RevokeAt: revoke}})
		case r < 86:
			g.commit(g.requeue())
		case r < 88:
			g.commit(g.signingKey())
		case r < 94:
			g.commit(g.sweep())
		case r < 96:
			g.commit(Command{PutNode: &Node{ID: fmt.Sprintf("n%d", 1+g.rng.IntN(3)),
				APIAddr: fmt.Sprintf("127.0.0.1:%d", 8000+g.rng.IntN(100)), RaftAddr: "127.0.0.1:9000"}})
		default:
			g.commit()
		}
		// The leader keeps a retry schedule; move time to the next due
		// delivery now and then so retries come round.
		if at, ok := earliestDue(g.t, g.store); ok && at > g.now && g.rng.IntN(4) == 0 {
			g.now = at
		}
	}
	mustCheck(g.t, g.store)
	return g.entries
}

// applyInChunks applies entries to s, size entries per Apply call (size < 1
// applies them all in one call), and returns every entry's results.
func applyInChunks(t testing.TB, s *Store, entries []Entry, size int) [][]Result {
	t.Helper()
	if size < 1 {
		size = len(entries)
	}
	var all [][]Result
	for start := 0; start < len(entries); start += size {
		res, err := s.Apply(entries[start:min(start+size, len(entries))])
		if err != nil {
			t.Fatalf("Apply entries from %d: %v", entries[start].Index, err)
		}
		all = append(all, res...)
	}
	return all
}

// checkOwnership checks what Check does not: every delivery belongs to
// exactly the message that lists it, and nothing else lists it.
func checkOwnership(t testing.TB, s *Store) {
	t.Helper()
	d := mustDump(t, s)
	owner := map[string]string{}
	for id, raw := range d["messages"] {
		var m Message
		if err := decode([]byte(raw), &m); err != nil {
			t.Fatalf("message %s: %v", id, err)
		}
		for _, dl := range m.Deliveries {
			if prev, ok := owner[dl]; ok {
				t.Fatalf("delivery %s listed by %s and %s", dl, prev, id)
			}
			owner[dl] = id
		}
	}
	for id, raw := range d["deliveries"] {
		var dl Delivery
		if err := decode([]byte(raw), &dl); err != nil {
			t.Fatalf("delivery %s: %v", id, err)
		}
		if o, ok := owner[id]; ok && o != dl.MessageID {
			t.Fatalf("delivery %s of message %s is listed by %s", id, dl.MessageID, o)
		}
	}
}

// failingEntry plants an undecodable endpoint record and returns an entry
// whose command reads it, so that applying the entry fails to write: the
// way a disk or a bug would make Apply fail. removeCorrupt takes the
// record away again (Check fails while it is there).
func failingEntry(t testing.TB, s *Store, index uint64) Entry {
	t.Helper()
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bEndpoints).Put([]byte(epID("corrupt")), []byte{0xc1})
	}); err != nil {
		t.Fatal(err)
	}
	return entry(t, index, Command{UpdateEndpoint: &UpdateEndpoint{ID: epID("corrupt"), At: t0}})
}

// removeCorrupt deletes the record failingEntry planted.
func removeCorrupt(t testing.TB, s *Store) {
	t.Helper()
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bEndpoints).Delete([]byte(epID("corrupt")))
	}); err != nil {
		t.Fatal(err)
	}
}
