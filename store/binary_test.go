package store

import (
	"reflect"
	"testing"

	"github.com/hashicorp/go-msgpack/v2/codec"
)

// sampleRecords are records with every field set, and with none.
func sampleRecords() []binaryRecord {
	return []binaryRecord{
		&Message{ID: "msg_1", Tenant: "acme", Type: "batch.completed", CreatedAt: 1_700_000_000_000_000_001,
			IdempotencyKey: "k-1", Deliveries: []string{"dlv_10000", "dlv_10001"}, Pending: 1, Succeeded: 2, Failed: 3, Cancelled: 4},
		&Message{Deliveries: []string{}},
		&Delivery{ID: "dlv_1", MessageID: "msg_1", EndpointID: "ep_1", URL: "https://example.com/hook", Status: StatusPending,
			AttemptCount: 7, RoundAttempts: 3, FirstAttemptAt: 11, NextAttemptAt: -12, LastStatusCode: 503, LastError: "HTTP 503 ✓",
			Attempts: []Attempt{{At: 1, StatusCode: 500, Error: "HTTP 500", DurationMS: 30}, {At: 2, DurationMS: 1 << 40}}},
		&Delivery{},
		&Tenant{ID: "acme", Endpoints: 1, Pending: 1 << 40, Messages: 3, Tokens: 4},
		&Tenant{},
		&Endpoint{ID: "ep_1", Tenant: "acme", URL: "https://example.com/hook", Name: "n", EventTypes: []string{"a", "b"},
			State: StateDisabledFailing, RateLimitPerS: 10, Secrets: []Secret{{Key: "whsec_a", ExpiresAt: 5}, {Key: "whsec_b"}},
			CreatedAt: 1, UpdatedAt: 2, DisabledReason: ReasonGone, DisabledAt: 3,
			Health: EndpointHealth{FailingSince: 4, Failures: 5, BreakerOpenedAt: 6}},
		&Endpoint{},
	}
}

// A record decodes from its compact encoding to what it decoded to from
// MessagePack: the encodings are interchangeable for every reader.
func TestBinaryMatchesMessagePack(t *testing.T) {
	for _, rec := range sampleRecords() {
		var viaPack []byte
		if err := codec.NewEncoderBytes(&viaPack, mh).Encode(rec); err != nil {
			t.Fatal(err)
		}
		fromPack := reflect.New(reflect.TypeOf(rec).Elem()).Interface()
		if err := decode(viaPack, fromPack); err != nil {
			t.Fatal(err)
		}
		raw, err := encode(rec)
		if err != nil {
			t.Fatal(err)
		}
		if raw[0] != binaryTag {
			t.Fatalf("%T encoded without the tag", rec)
		}
		fromBinary := reflect.New(reflect.TypeOf(rec).Elem()).Interface()
		if err := decode(raw, fromBinary); err != nil {
			t.Fatalf("%T: %v", rec, err)
		}
		if !reflect.DeepEqual(fromBinary, fromPack) {
			t.Errorf("%T:\nbinary      %#v\nMessagePack %#v", rec, fromBinary, fromPack)
		}
	}
}

// Every truncation of a record, and trailing garbage, is an error, never
// a panic.
func TestBinaryRejectsCorruptRecords(t *testing.T) {
	for _, rec := range sampleRecords() {
		raw := encodeBinary(rec)
		for n := 0; n < len(raw); n++ {
			into := reflect.New(reflect.TypeOf(rec).Elem()).Interface().(binaryRecord)
			if err := decodeBinary(raw[:n], into); err == nil {
				t.Errorf("%T cut to %d of %d bytes decoded", rec, n, len(raw))
			}
		}
		into := reflect.New(reflect.TypeOf(rec).Elem()).Interface().(binaryRecord)
		if err := decodeBinary(append(raw, 0), into); err == nil {
			t.Errorf("%T with a trailing byte decoded", rec)
		}
	}
	// A length beyond the record is refused before anything is allocated.
	var d Delivery
	if err := decodeBinary([]byte{binaryTag, 0xff, 0xff, 0xff, 0xff, 0x0f}, &d); err == nil {
		t.Error("a 4 GiB string length decoded")
	}
}

func FuzzDecodeBinary(f *testing.F) {
	for _, rec := range sampleRecords() {
		f.Add(encodeBinary(rec))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, rec := range []binaryRecord{new(Message), new(Delivery), new(Tenant), new(Endpoint)} {
			if decodeBinary(raw, rec) != nil {
				continue
			}
			// What decodes re-encodes to the same bytes but for varint
			// spellings, and decodes again to the same record.
			again := reflect.New(reflect.TypeOf(rec).Elem()).Interface().(binaryRecord)
			if err := decodeBinary(encodeBinary(rec), again); err != nil || !reflect.DeepEqual(normal(again), normal(rec)) {
				t.Fatalf("%T: re-encoding changed it: %v", rec, err)
			}
		}
	})
}

// normal maps an empty list to nil, which the encoding does not tell apart.
func normal(rec binaryRecord) binaryRecord {
	if m, ok := rec.(*Message); ok && len(m.Deliveries) == 0 {
		c := *m
		c.Deliveries = nil
		return &c
	}
	return rec
}

func BenchmarkDecodeDelivery(b *testing.B) {
	d := sampleRecords()[2].(*Delivery)
	var pack []byte
	if err := codec.NewEncoderBytes(&pack, mh).Encode(d); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		raw  []byte
	}{{"messagepack", pack}, {"binary", encodeBinary(d)}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var out Delivery
				if err := decode(c.raw, &out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
