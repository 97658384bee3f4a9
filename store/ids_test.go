package store

import (
	"bytes"
	crand "crypto/rand"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestNewIDFormat(t *testing.T) {
	g := newIDs(40)
	for range 1000 {
		id := g.next(t, "msg", t0)
		if !strings.HasPrefix(id, "msg_") || len(id) != 4+26 {
			t.Fatalf("id %q: want msg_ and 26 characters", id)
		}
		for _, c := range id[4:] {
			if !strings.ContainsRune(crockford, c) {
				t.Fatalf("id %q has %q, not Crockford base32", id, c)
			}
		}
		if id[4] > '7' {
			t.Fatalf("id %q: the first digit carries only 3 bits", id)
		}
	}
	// The same entropy gives the same id: ids are stamped, not drawn at apply.
	a, _ := NewID("msg", time.Unix(0, t0), bytes.NewReader(make([]byte, 10)))
	b, _ := NewID("msg", time.Unix(0, t0), bytes.NewReader(make([]byte, 10)))
	if a != b {
		t.Fatalf("same input, different ids: %s %s", a, b)
	}
	if _, err := NewID("msg", time.Unix(0, t0), iotest.ErrReader(errors.New("no entropy"))); err == nil {
		t.Fatal("NewID with failing entropy succeeded")
	}
	if _, err := NewID("msg", time.Unix(0, t0), bytes.NewReader(make([]byte, 9))); err == nil {
		t.Fatal("NewID with short entropy succeeded")
	}
}

func TestNewIDSortsByTime(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	g := newIDs(41)
	at := time.Date(1971, 1, 1, 0, 0, 0, 0, time.UTC)
	prev := ""
	for i := range 5000 {
		// Steps from 1 ms to about a year, so every digit of the time rolls.
		step := time.Duration(1+rng.Int64N(1<<uint(rng.IntN(35)))) * time.Millisecond
		at = at.Add(step)
		id := g.next(t, "msg", at.UnixNano())
		if id <= prev {
			t.Fatalf("step %d: id %s at %v does not sort after %s", i, id, at, prev)
		}
		prev = id
	}
}

func TestMessageTime(t *testing.T) {
	g := newIDs(42)
	for _, at := range []time.Time{
		time.Unix(0, 0),
		time.Unix(0, t0),
		time.Unix(0, t0+123_456_789), // sub-millisecond part is dropped
		time.Date(2026, 11, 26, 20, 39, 1, 999_999_999, time.UTC),
		time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC), // near the end of int64 nanoseconds
	} {
		id, err := NewID("msg", at, g.r)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := messageTime(id), at.Truncate(time.Millisecond).UnixNano(); got != want {
			t.Errorf("messageTime(NewID(%v)) = %d, want %d", at, got, want)
		}
	}
	for _, id := range []string{
		"", "msg", "msg_", "msg_01ARZ3NDEKTSV4RRFFQ69G5FA", "msg_01ARZ3NDEKTSV4RRFFQ69G5FAVV",
		"msg01ARZ3NDEKTSV4RRFFQ69G5FAV", "msg_01ARZ3NDEkTSV4RRFFQ69G5FAV", "msg_01ARZ3NDEUTSV4RRFFQ69G5FAV",
	} {
		if got := messageTime(id); got != 0 {
			t.Errorf("messageTime(%q) = %d, want 0", id, got)
		}
	}
	// The ULID spec's example id, decoded by hand: 01ARZ3NDEK is
	// 1469922850259 ms. Any prefix will do.
	if got := messageTime("key_01ARZ3NDEKTSV4RRFFQ69G5FAV"); got != 1469922850259*int64(time.Millisecond) {
		t.Errorf("messageTime of the ULID spec example = %d", got)
	}
	id, err := NewID("msg", time.UnixMilli(1469922850259), bytes.NewReader(make([]byte, 10)))
	if err != nil || id != "msg_01ARZ3NDEK0000000000000000" {
		t.Errorf("NewID at the spec example's time with zero entropy = %s, %v", id, err)
	}
}

func TestDeliveryID(t *testing.T) {
	g := newIDs(43)
	m1 := g.next(t, "msg", t0)
	m2 := g.next(t, "msg", t0+ms(1))
	seen := map[string]bool{}
	prev := ""
	const n = 32*32 + 100 // past two digit roll-overs
	for i := range n {
		id := DeliveryID(m1, i)
		if !strings.HasPrefix(id, "dlv_"+m1[4:]) || len(id) != len(m1)+4 {
			t.Fatalf("DeliveryID(%s, %d) = %s", m1, i, id)
		}
		if seen[id] {
			t.Fatalf("DeliveryID(%s, %d) = %s repeats", m1, i, id)
		}
		seen[id] = true
		if id <= prev {
			t.Fatalf("DeliveryID(%s, %d) = %s does not sort after %s", m1, i, id, prev)
		}
		prev = id
	}
	// A later message's deliveries sort after every one of an earlier's.
	if first := DeliveryID(m2, 0); first <= DeliveryID(m1, 32*32*32*32-1) {
		t.Fatalf("%s sorts before the last delivery of the earlier message", first)
	}
	if DeliveryID(m1, 3) != DeliveryID(m1, 3) {
		t.Fatal("DeliveryID is not a function of its inputs")
	}
}

func TestEncodeDecodeBatch(t *testing.T) {
	cmds := []Command{
		createEndpoint("ep_a", "https://a.example", t0, "x"),
		withKey(override("msg_1", "x", t0, "https://o.example"), "K", t0+1),
		outcome("dlv_1", 1, t0, ResultRetry, 503, t0+5),
		{UpdateEndpoint: &UpdateEndpoint{ID: "ep_a", At: t0, URL: ptr("https://b.example"), EventTypes: ptr([]string{}), State: ptr(StateDisabled), RateLimitPerS: ptr(0)}},
		{DeleteEndpoint: &DeleteEndpoint{ID: "ep_a", At: t0}},
		{RotateSecret: &RotateSecret{EndpointID: "ep_a", Secret: "whsec_x", At: t0, RevokeAt: t0 + 1}},
		{Requeue: &Requeue{Since: 1, Until: 2, At: 3}},
		{AddSigningKey: &AddSigningKey{Key: SigningKey{ID: "k", Alg: "ed25519", Private: []byte{0, 1, 255}, CreatedAt: t0}}},
		{Sweep: &Sweep{At: 1, RetainSince: 2, KeysRetiredBefore: 3, Limit: 4}},
		{PutNode: &Node{ID: "n1", APIAddr: "a", RaftAddr: "r"}},
	}
	data, err := EncodeBatch(cmds)
	if err != nil {
		t.Fatal(err)
	}
	if data[0] != entryVersion {
		t.Fatalf("first byte %d, want the entry version", data[0])
	}
	got, err := DecodeBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, cmds) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, cmds)
	}
	// Every call returns a fresh slice (Raft keeps the pointer).
	again, _ := EncodeBatch(cmds)
	again[1] = 'X'
	if data[1] == 'X' {
		t.Fatal("EncodeBatch reused its output buffer")
	}

	notList, _ := encode(map[string]any{"enqueue": map[string]any{}})
	wrongType, _ := encode([]map[string]any{{"outcome": map[string]any{"attempt": "one"}}})
	emptyList, _ := encode([]Command{})
	bad := []struct {
		name string
		data []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"unknown version", append([]byte{entryVersion + 1}, data[1:]...)},
		{"version zero", append([]byte{0}, emptyList...)},
		{"truncated", data[:len(data)/2]},
		{"not a list", append([]byte{entryVersion}, notList...)},
		{"wrong field type", append([]byte{entryVersion}, wrongType...)},
		{"version only", []byte{entryVersion}},
	}
	for _, b := range bad {
		if _, err := DecodeBatch(b.data); err == nil {
			t.Errorf("DecodeBatch(%s) succeeded", b.name)
		}
	}
	if got, err := DecodeBatch(append([]byte{entryVersion}, emptyList...)); err != nil || len(got) != 0 {
		t.Errorf("empty batch: %v, %v", got, err)
	}
}

// TestTimeKeyBoundsIDs checks that timeKey is a lower bound for the ids of
// its millisecond and an upper bound for earlier ones, so seeking to it
// starts a time window exactly.
func TestTimeKeyBoundsIDs(t *testing.T) {
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	key := timeKey("msg", at.UnixNano())
	for i := range 100 {
		same, err := NewID("msg", at, crand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		before, _ := NewID("msg", at.Add(-time.Millisecond), crand.Reader)
		if same < key || before >= key {
			t.Fatalf("try %d: %s !<= %s or %s !< %s", i, key, same, before, key)
		}
	}
	if timeKey("msg", -5) != timeKey("msg", 0) {
		t.Fatal("a negative time does not clamp to the epoch")
	}
}
