package store

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzApply reads its input as a program that writes log entries: raw
// bytes (undecodable or hostile encodings), encoded batches with damaged
// bytes, batches of commands built from valid templates of every kind and
// then spoilt field by field (oversized ids, huge and invalid UTF-8
// strings, negative and extreme times, a second command set, ...),
// replays, retried batches and an over-long batch. Commands act in several
// tenants (the empty one, which is the default, among them) on records of
// every tenant, so many name another tenant's; tenants are deleted and
// tokens created past their cap. It applies the entries
// to two stores that start from the same state: A in one Apply call, B one
// entry per call, as two replicas may batch them. Apply must never fail or
// panic; both must answer every command alike, keep every invariant Check
// verifies, and end byte for byte identical; and an entry whose commands
// were all rejected must change nothing but the applied index.
//
//	go test -run='^$' -fuzz='^FuzzApply$' -fuzztime=20000x ./store
func FuzzApply(f *testing.F) {
	base, fx := fuzzBaseState(f)
	for _, p := range fuzzSeedPrograms(len(fx.templates())) {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, program []byte) {
		entries := fx.entries(t, &fuzzInput{b: program})
		a, b := openFuzzStore(t, base, "a"), openFuzzStore(t, base, "b")

		ra, err := a.Apply(entries)
		if err != nil {
			t.Fatalf("Apply of %d entries in one call: %v", len(entries), err)
		}
		rb := make([][]Result, 0, len(entries))
		for _, e := range entries {
			before := mustDump(t, b)
			r, err := b.Apply([]Entry{e})
			if err != nil {
				t.Fatalf("Apply of entry %d alone: %v", e.Index, err)
			}
			rb = append(rb, r[0])
			if len(r[0]) > 0 && allRejected(r[0]) {
				after := mustDump(t, b)
				delete(before, "meta")
				delete(after, "meta")
				if d := diffDumps(before, after); d != "" {
					t.Fatalf("entry %d was rejected (%v) but changed the state:\n%s", e.Index, r[0][0].Err, d)
				}
			}
		}
		if len(ra) != len(entries) {
			t.Fatalf("%d result lists for %d entries", len(ra), len(entries))
		}
		for i := range entries {
			if len(ra[i]) != len(rb[i]) {
				t.Fatalf("entry %d: %d results in one call, %d alone", entries[i].Index, len(ra[i]), len(rb[i]))
			}
			for j := range ra[i] {
				if x, y := describeResult(ra[i][j]), describeResult(rb[i][j]); x != y {
					t.Fatalf("entry %d command %d: %s in one call, %s alone", entries[i].Index, j, x, y)
				}
			}
		}
		for _, s := range []*Store{a, b} {
			mustCheck(t, s)
			checkOwnership(t, s)
		}
		sameDump(t, a, b, "one Apply call and one per entry")
	})
}

func allRejected(rs []Result) bool {
	for _, r := range rs {
		if r.Err == nil {
			return false
		}
	}
	return true
}

func describeResult(r Result) string {
	err := "<nil>"
	if r.Err != nil {
		err = fmt.Sprintf("%q", r.Err.Error())
	}
	return fmt.Sprintf("{MessageID:%q Duplicate:%v Count:%d Index:%d Err:%s}", r.MessageID, r.Duplicate, r.Count, r.Index, err)
}

// fuzzBase is the message every fuzz run's store already holds, so that
// commands naming it or its deliveries have something to act on.
const fuzzBase = "msg_01ARZ3NDEK0000000000000000"

// fuzzFixture holds the ids and values the base state and the templates
// share.
type fuzzFixture struct {
	index   uint64   // the base state's applied index
	msgs    []string // the base messages and some new ids
	eps     []string // the base endpoints and a new id
	dlvs    []string
	tenants []string // the empty one (the default), the default, two others
	hashes  [][]byte // token hashes: the base token's and new ones
	secret  string   // sealed
	strs    []string
	ints    []int64
	blobs   [][]byte
}

// fuzzBaseState builds the state both stores start from, once per process,
// and returns it as a bbolt file.
func fuzzBaseState(f *testing.F) ([]byte, *fuzzFixture) {
	g := newIDs(90)
	over, failed := g.next(f, "msg", t0), g.next(f, "msg", t0+ms(1))
	inT1 := g.next(f, "msg", t0+ms(1))
	fx := &fuzzFixture{
		msgs:    []string{fuzzBase, over, failed, inT1, g.next(f, "msg", t0+ms(2)), g.next(f, "msg", t0+ms(3))},
		eps:     []string{epID("a"), epID("b"), epID("c"), epID("t1"), epID("new")},
		tenants: []string{"", DefaultTenant, "t1", "t2"},
		hashes:  [][]byte{tokenHash("t1"), tokenHash("x"), tokenHash("y")},
	}
	for _, m := range fx.msgs[:4] {
		fx.dlvs = append(fx.dlvs, DeliveryID(m, 0), DeliveryID(m, 1))
	}
	fx.secret = string(testSealer.Seal([]byte(testSecret("sealed")), fx.eps[0]))
	day := ms(24 * 3600 * 1000)
	fx.strs = []string{
		"", "x", "y", "batch.succeeded", "a b", "\xff\xfe", "é", string(make([]byte, 40_000)),
		string(bytes.Repeat([]byte("x"), 257)), string(bytes.Repeat([]byte("é"), 200)),
		fx.eps[0], fx.eps[1], fx.eps[3], fx.eps[4], "ep_a", fuzzBase, fx.msgs[3], fx.msgs[4], "msg_x",
		DefaultTenant, "t1", "t2", "*", "t\x00", strings.Repeat("t", 65),
		fx.dlvs[0], fx.dlvs[1], fx.dlvs[4], "dlv_x",
		testSecret("f"), fx.secret, "whsec_", "whsec_AAAA", "hsl1_AAAA",
		"https://o.example/f", "https://u:p@o.example", "ftp://o.example", "https://",
		StateEnabled, StateDisabled, StateDisabledFailing, ResultRetry, ResultGone, ResultSucceeded, "exploded",
		"k1", "k2", "n1", "-n", "127.0.0.1:1", "nohost", "K",
	}
	fx.ints = []int64{0, 1, -1, 2, 99, 100, 410, 599, 600, MaxRateLimit, MaxRateLimit + 1, MaxSweepLimit,
		MaxSweepLimit + 1, math.MaxInt64, math.MinInt64, math.MaxInt32 + 1, t0, t0 + 1, t0 - 1, t0 + ms(1000), t0 + day}
	fx.blobs = [][]byte{nil, {}, []byte(`{}`), testPrivate(AlgEd25519), testRSAKey, fx.hashes[0], fx.hashes[1],
		testSealer.Seal(testRSAKey, "k"), []byte("hsl1_AAAA"), make([]byte, MaxEnvelopeBytes+1)}

	s := openTest(f)
	fail := outcome(DeliveryID(failed, 0), 1, t0+ms(2), ResultFailed, 500, 0)
	entries := []Entry{
		entry(f, 1,
			createEndpoint(fx.eps[0], "https://a.example", t0),
			createEndpoint(fx.eps[1], "https://b.example", t0, "x"),
			createEndpoint(fx.eps[2], "https://c.example", t0),
			signingKey("k0", AlgRS256, t0), signingKey("k1", AlgEd25519, t0),
			Command{PutNode: &Node{ID: "n1", APIAddr: "127.0.0.1:8081", RaftAddr: "127.0.0.1:9081"}},
		),
		entry(f, 2,
			Command{UpdateEndpoint: &UpdateEndpoint{ID: fx.eps[2], At: t0, State: ptr(StateDisabled)}},
			withKey(fanOut(fuzzBase, "x", t0), "K", t0+ms(1000)),
			override(over, "x", t0, "https://o.example/1", "https://o.example/2"),
			override(failed, "y", t0+ms(1), "https://o.example/3"),
		),
		entry(f, 3, fail, outcome(DeliveryID(over, 0), 1, t0+ms(2), ResultRetry, 503, t0+ms(500))),
		entry(f, 4,
			inTenant("t1", createEndpoint(fx.eps[3], "https://t1.example", t0)),
			createToken("t1", "t1", t0, t0+ms(1000)),
		),
		// The same idempotency key as the default tenant's, to t1's
		// endpoint and an override.
		entry(f, 5, inTenant("t1", withKey(fanOut(inT1, "x", t0+ms(1)), "K", t0+ms(1000))),
			outcome(DeliveryID(inT1, 0), 1, t0+ms(2), ResultFailed, 500, 0)),
	}
	fx.index = uint64(len(entries))
	res, err := s.Apply(entries)
	if err != nil {
		f.Fatal(err)
	}
	for _, rs := range res {
		for _, r := range rs {
			if r.Err != nil {
				f.Fatalf("base state: %v", r.Err)
			}
		}
	}
	mustCheck(f, s)
	sn, err := s.Snapshot()
	if err != nil {
		f.Fatal(err)
	}
	defer sn.Release()
	var buf bytes.Buffer
	if _, err := sn.WriteTo(&buf); err != nil {
		f.Fatal(err)
	}
	return buf.Bytes(), fx
}

// openFuzzStore opens a copy of the base file. It skips the session file
// and the fsyncs of Open and Close, which would dominate a fuzz run.
func openFuzzStore(t *testing.T, base []byte, name string) *Store {
	path := filepath.Join(t.TempDir(), name+".db")
	if err := os.WriteFile(path, base, 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Store{path: path, noSync: true}
	if err := s.open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.db.Close() })
	return s
}

// fuzzInput hands out the fuzz input a byte at a time, then zeros.
type fuzzInput struct{ b []byte }

func (in *fuzzInput) done() bool { return len(in.b) == 0 }

func (in *fuzzInput) byte() byte {
	if len(in.b) == 0 {
		return 0
	}
	c := in.b[0]
	in.b = in.b[1:]
	return c
}

func (in *fuzzInput) intn(n int) int { return int(in.byte()) % n }

func (in *fuzzInput) u16() int { return int(in.byte()) | int(in.byte())<<8 }

func (in *fuzzInput) take(n int) []byte {
	n = min(n, len(in.b))
	out := bytes.Clone(in.b[:n])
	in.b = in.b[n:]
	return out
}

// sub returns the input's next bytes, as many as the next byte says.
func (in *fuzzInput) sub() *fuzzInput { return &fuzzInput{b: in.take(int(in.byte()))} }

func pick[T any](in *fuzzInput, xs []T) T { return xs[in.intn(len(xs))] }

// Entry program opcodes (the low three bits of a byte; bit 6 gives the
// entry the index of the one before, a replay that Apply skips, and bit 7
// puts the version byte before raw bytes). Raw bytes come after a 2-byte
// length; a batch, and each of its commands, is built from the bytes after
// a 1-byte length, so that what one reads does not shift the next.
const (
	opRaw = iota
	opDamaged
	opConfig
	opRetry
	opLong
	opBatch
	maxFuzzEntries = 12
	maxFuzzBytes   = 16 << 20
)

func (fx *fuzzFixture) entries(t *testing.T, in *fuzzInput) []Entry {
	var entries []Entry
	index, long, size := fx.index, false, 0
	// The size bound keeps a run's memory in check: blobs of 1 MiB and
	// lists of 40 KB strings, retried, add up.
	for !in.done() && len(entries) < maxFuzzEntries && size < maxFuzzBytes {
		op := in.byte()
		if op&0x40 == 0 || index == fx.index {
			index++
		}
		e := Entry{Index: index}
		switch op & 7 {
		case opRaw:
			e.Data = in.take(in.u16() % 4096)
			if op&0x80 != 0 {
				e.Data = append([]byte{entryVersion}, e.Data...)
			}
		case opDamaged:
			e.Data = encodeFuzzBatch(t, fx.batch(in.sub()))
			for range in.intn(4) {
				pos := in.u16() % len(e.Data)
				switch in.intn(3) {
				case 0:
					e.Data[pos] ^= in.byte() | 1
				case 1:
					e.Data = e.Data[:pos]
				default:
					e.Data = append(e.Data[:pos], append([]byte{in.byte()}, e.Data[pos:]...)...)
				}
				if len(e.Data) == 0 {
					break
				}
			}
		case opConfig:
			// A configuration change: no data.
		case opRetry:
			if len(entries) > 0 {
				e.Data = pick(in, entries).Data
			}
		case opLong:
			if !long { // one per run: they are slow to encode
				long = true
				// Rejected whole before any command is looked at, so
				// an unspoilt one will do, and keeps the entry small
				// (spoilt, it may hold a 1 MiB blob: 1 GiB in all).
				sub := in.sub()
				c := pick(sub, fx.templates())(sub)
				cmds := make([]Command, MaxCommandsPerEntry+1)
				for i := range cmds {
					cmds[i] = c
				}
				e.Data = encodeFuzzBatch(t, cmds)
			}
		default:
			e.Data = encodeFuzzBatch(t, fx.batch(in.sub()))
		}
		if op&7 == opRaw || op&7 == opDamaged {
			if cmds, err := DecodeBatch(e.Data); err == nil && len(cmds) <= MaxCommandsPerEntry {
				if _, err := EncodeBatch(cmds); err != nil {
					t.Fatalf("a decoded batch does not encode: %v", err)
				}
			}
		}
		entries = append(entries, e)
		size += len(e.Data)
	}
	return entries
}

// encodeFuzzBatch encodes a batch as EncodeBatch does, but of any length.
func encodeFuzzBatch(t *testing.T, cmds []Command) []byte {
	body, err := encode(cmds)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{entryVersion}, body...)
}

func (fx *fuzzFixture) batch(in *fuzzInput) []Command {
	cmds := make([]Command, 1+in.intn(6))
	for i := range cmds {
		cmds[i] = fx.command(in.sub())
	}
	return cmds
}

// command builds a command from a template, then spoils up to three of its
// fields.
func (fx *fuzzFixture) command(in *fuzzInput) Command {
	tmpl, spoils := pick(in, fx.templates()), in.intn(4)
	c := tmpl(in)
	for range spoils {
		fx.spoil(in, &c)
	}
	return c
}

// templates make valid commands of every kind that act on the base state.
func (fx *fuzzFixture) templates() []func(*fuzzInput) Command {
	at := func(in *fuzzInput) int64 { return t0 + ms(int64(in.intn(16))*100) }
	// tenant picks the tenant of a command: records of every tenant are
	// in the pools, so commands name other tenants' records too.
	tenant := func(in *fuzzInput) string { return pick(in, fx.tenants) }
	return []func(*fuzzInput) Command{
		func(in *fuzzInput) Command {
			c := inTenant(tenant(in), fanOut(pick(in, fx.msgs), pick(in, []string{"x", "y", "z"}), at(in)))
			if in.intn(2) == 0 {
				c = withKey(c, pick(in, []string{"K", "L"}), c.Enqueue.CreatedAt+ms(1+int64(in.intn(2000))))
			}
			return c
		},
		func(in *fuzzInput) Command {
			return inTenant(tenant(in), override(pick(in, fx.msgs), "x", at(in), "https://o.example/"+fmt.Sprint(in.intn(3))))
		},
		func(in *fuzzInput) Command {
			return inTenant(tenant(in), ping(pick(in, fx.msgs), at(in), pick(in, fx.eps)))
		},
		func(in *fuzzInput) Command {
			res := pick(in, []string{ResultSucceeded, ResultRetry, ResultFailed, ResultGone, ResultCancelled})
			c := outcome(pick(in, fx.dlvs), 1+in.intn(3), at(in), res, pick(in, []int{200, 410, 500, 0}), at(in)+1)
			if c.Outcome.failed() {
				c.Outcome.OpenBreaker, c.Outcome.Disable = in.intn(3) == 0, in.intn(4) == 0
			}
			return c
		},
		func(in *fuzzInput) Command {
			c := inTenant(tenant(in), createEndpoint(pick(in, fx.eps), "https://n.example", at(in), "x"))
			if in.intn(2) == 0 {
				c.CreateEndpoint.Endpoint.Secrets = append(c.CreateEndpoint.Endpoint.Secrets, Secret{Key: fx.secret, ExpiresAt: at(in)})
			}
			return c
		},
		func(in *fuzzInput) Command {
			u := &UpdateEndpoint{Tenant: tenant(in), ID: pick(in, fx.eps), At: at(in)}
			bits := in.byte()
			if bits&1 != 0 {
				u.URL = ptr("https://moved.example")
			}
			if bits&2 != 0 {
				u.Name = ptr("renamed")
			}
			if bits&4 != 0 {
				u.EventTypes = ptr([]string{"y"})
			}
			if bits&8 != 0 {
				u.State = ptr(pick(in, []string{StateEnabled, StateDisabled}))
			}
			if bits&16 != 0 {
				u.RateLimitPerS = ptr(in.intn(10))
			}
			return Command{UpdateEndpoint: u}
		},
		func(in *fuzzInput) Command {
			return Command{DeleteEndpoint: &DeleteEndpoint{Tenant: tenant(in), ID: pick(in, fx.eps), At: at(in)}}
		},
		func(in *fuzzInput) Command {
			a := at(in)
			return Command{RotateSecret: &RotateSecret{Tenant: tenant(in), EndpointID: pick(in, fx.eps),
				Secret: pick(in, []string{testSecret("1"), testSecret("2"), fx.secret}), At: a, RevokeAt: a + int64(in.intn(2))*ms(1000)}}
		},
		func(in *fuzzInput) Command {
			return Command{Requeue: &Requeue{Tenant: tenant(in), MessageID: pick(in, fx.msgs), At: at(in)}}
		},
		func(in *fuzzInput) Command {
			r := &Requeue{Tenant: tenant(in), Since: at(in) - ms(1000), At: at(in)}
			if in.intn(2) == 0 {
				r.Until = r.Since + ms(1+int64(in.intn(3000)))
			}
			if in.intn(2) == 0 { // a bounded batch, perhaps from a resume point
				r.Limit = 1 + in.intn(3)
				if in.intn(2) == 0 {
					r.After = pick(in, fx.msgs)
				}
			}
			return Command{Requeue: r}
		},
		func(in *fuzzInput) Command {
			return Command{EndPending: &EndPending{Tenant: pick(in, fx.tenants[1:]), EndpointID: pick(in, fx.eps),
				Status: pick(in, []string{StatusCancelled, StatusFailed}), Reason: "endpoint disabled", Limit: 1 + in.intn(3)}}
		},
		func(in *fuzzInput) Command {
			return signingKey(pick(in, []string{"k1", "k2", "k3"}), pick(in, []string{AlgEd25519, AlgRS256}), at(in))
		},
		func(in *fuzzInput) Command {
			return Command{Sweep: &Sweep{At: at(in), RetainSince: at(in), KeysRetiredBefore: at(in), Limit: 1 + in.intn(5)}}
		},
		func(in *fuzzInput) Command {
			return Command{PutNode: &Node{ID: pick(in, []string{"n1", "n2"}), APIAddr: "127.0.0.1:8082", RaftAddr: "127.0.0.1:9082"}}
		},
		func(in *fuzzInput) Command {
			return Command{DeleteTenant: &DeleteTenant{Tenant: pick(in, fx.tenants[1:]), At: at(in), Limit: 1 + in.intn(5)}}
		},
		func(in *fuzzInput) Command {
			a := at(in)
			return Command{CreateTenantToken: &CreateTenantToken{Tenant: pick(in, fx.tenants[1:]), Hash: pick(in, fx.hashes),
				CreatedAt: a, ExpiresAt: a + ms(1+int64(in.intn(2000)))}}
		},
		func(in *fuzzInput) Command {
			return Command{RevokeTenantTokens: &RevokeTenantTokens{Tenant: pick(in, fx.tenants[1:])}}
		},
	}
}

// spoil sets one field of c, found by reflection so that every field of
// every command is reached, to a value from the fixture's pools or the
// input. A nil pointer is allocated (an optional field), a set one
// cleared. Now and then it sets or clears a whole command instead, which
// leaves c with two or none.
func (fx *fuzzFixture) spoil(in *fuzzInput, c *Command) {
	cmd := reflect.ValueOf(c).Elem()
	if in.intn(16) == 0 {
		if v := cmd.Field(in.intn(cmd.NumField())); v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		} else {
			v.SetZero()
		}
		return
	}
	var fields []reflect.Value
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer:
			fields = append(fields, v)
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Struct:
			for i := range v.NumField() {
				walk(v.Field(i))
			}
		case reflect.Slice:
			fields = append(fields, v)
			if v.Type().Elem().Kind() != reflect.Uint8 {
				for i := range v.Len() {
					walk(v.Index(i))
				}
			}
		default:
			fields = append(fields, v)
		}
	}
	for i := range cmd.NumField() {
		if f := cmd.Field(i); !f.IsNil() {
			walk(f.Elem())
		}
	}
	if len(fields) == 0 {
		return // an empty command
	}
	v := pick(in, fields)
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		} else {
			v.SetZero()
		}
	case reflect.String:
		v.SetString(fx.str(in))
	case reflect.Int, reflect.Int64:
		v.SetInt(pick(in, fx.ints))
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Slice:
		switch elem := v.Type().Elem(); {
		case elem.Kind() == reflect.Uint8:
			b := pick(in, fx.blobs)
			if in.intn(4) == 0 {
				b = in.take(in.intn(64))
			}
			v.SetBytes(b)
		case in.intn(3) == 0:
			v.SetZero()
		default:
			n := pick(in, []int{1, MaxURIs + 1, MaxEventTypes + 1})
			s := reflect.MakeSlice(v.Type(), n, n)
			one := reflect.New(elem).Elem()
			if elem.Kind() == reflect.String {
				one.SetString(fx.str(in))
			} else { // []Secret
				one.Set(reflect.ValueOf(Secret{Key: fx.str(in), ExpiresAt: pick(in, fx.ints)}))
			}
			for i := range n {
				s.Index(i).Set(one)
			}
			v.Set(reflect.AppendSlice(v, s))
		}
	}
}

func (fx *fuzzFixture) str(in *fuzzInput) string {
	if in.intn(4) == 0 {
		return string(in.take(in.intn(64)))
	}
	return pick(in, fx.strs)
}

// fuzzSeedPrograms are programs that build one command of each template
// (unspoilt and spoilt, with a few runs of values for the template to
// read), a batch of them all, and one entry of each other kind.
func fuzzSeedPrograms(templates int) [][]byte {
	// batch returns an opBatch entry of commands, each a template's index,
	// a number of spoils and the bytes the template and spoils read.
	batch := func(cmds ...[]byte) []byte {
		body := []byte{byte(len(cmds) - 1)}
		for _, c := range cmds {
			body = append(body, c...)
		}
		return append([]byte{opBatch, byte(len(body))}, body...)
	}
	cmd := func(k, spoils int, fill byte) []byte {
		return append([]byte{14, byte(k), byte(spoils)}, bytes.Repeat([]byte{fill}, 12)...)
	}
	var out [][]byte
	var all [][]byte
	for k := range templates {
		for _, fill := range []byte{0, 3, 4} {
			out = append(out, batch(cmd(k, 0, fill)))
		}
		out = append(out, batch(cmd(k, 1, 7))) // spoilt once
		if len(all) < 6 {
			all = append(all, cmd(k, 0, byte(3+k%2)))
		}
	}
	out = append(out,
		batch(all...),
		append(batch(cmd(0, 0, 3)), opRetry, 0),
		append([]byte{opConfig}, batch(cmd(3, 0, 3))...),
		append(append([]byte{opDamaged, 16, 0}, cmd(3, 0, 3)...), 2, 0, 5, 0, 1, 9, 0, 0x55),
		[]byte{opLong, 2, 1, 3},
	)
	for _, raw := range []string{
		"", "\x01", "\x01\x90", "\x01\x91\x80", "\x01\xc0", "\x02\x90", "garbage",
		"\x01\x91\x81\xa7enqueue\x81\xa2id\xa1m", "\x01\xdd\xff\xff\xff\xff", "\x01\x91\x81\xa5sweep\x81\xa5limit\xff",
	} {
		out = append(out, append([]byte{opRaw, byte(len(raw)), 0}, raw...))
	}
	return out
}

// TestFuzzSeedsAreValid guards the seeds: the unspoilt templates make valid
// commands, so the fuzzer starts from commands Apply accepts.
func TestFuzzSeedsAreValid(t *testing.T) {
	g := newIDs(91)
	fx := &fuzzFixture{msgs: []string{g.next(t, "msg", t0)}, eps: []string{epID("a")},
		dlvs: []string{DeliveryID(fuzzBase, 0)}, secret: string(testSealer.Seal([]byte("s"), "a")),
		tenants: []string{"", DefaultTenant, "t1"}, hashes: [][]byte{tokenHash("h")}}
	for k, tmpl := range fx.templates() {
		for b := range 256 {
			c := tmpl(&fuzzInput{b: bytes.Repeat([]byte{byte(b)}, 16)})
			if err := c.Validate(); err != nil {
				t.Fatalf("template %d with input %d: %v", k, b, err)
			}
		}
	}
	if err := (&Command{}).Validate(); !errors.As(err, new(*InvalidError)) {
		t.Fatalf("empty command: %v", err)
	}
}
