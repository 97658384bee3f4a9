package store

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The records every message writes and reads — Message, Delivery, Tenant
// and Endpoint — have a compact encoding of their own: fields in a fixed
// order, integers as varints, strings and lists length-prefixed, after
// binaryTag. Decoding one is an order of magnitude cheaper than reflecting
// over MessagePack, which was a tenth of the leader's CPU per message.
// Adding a field to one of them changes the schema version.

// binaryTag begins a compactly encoded record: 0xc1 is the one byte
// MessagePack never uses, so a record of an earlier schema (MessagePack,
// read only while migrating) is never mistaken for one.
const binaryTag = 0xc1

// binaryRecord is a record with the compact encoding.
type binaryRecord interface {
	appendBinary(b []byte) []byte
	readBinary(r *reader)
}

var (
	_ binaryRecord = (*Message)(nil)
	_ binaryRecord = (*Delivery)(nil)
	_ binaryRecord = (*Tenant)(nil)
	_ binaryRecord = (*Endpoint)(nil)
)

// encodeBinary returns rec's tagged compact encoding.
func encodeBinary(rec binaryRecord) []byte {
	return rec.appendBinary(append(make([]byte, 0, 128), binaryTag))
}

// decodeBinary decodes a tagged compact encoding into rec. Every length is
// checked against what is left, so a corrupt record is an error, never a
// panic or a huge allocation.
func decodeBinary(raw []byte, rec binaryRecord) error {
	if len(raw) == 0 || raw[0] != binaryTag {
		return errors.New("not a compact record")
	}
	r := reader{buf: raw[1:], text: string(raw[1:])}
	rec.readBinary(&r)
	if r.err == nil && len(r.buf) > 0 {
		r.err = fmt.Errorf("%d bytes after the record", len(r.buf))
	}
	return r.err
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendInt(b []byte, v int64) []byte { return binary.AppendVarint(b, v) }

// reader decodes a compact record; the first error sticks and later reads
// return zero values. Its strings share one copy of the record (text), one
// allocation instead of one per field.
type reader struct {
	buf  []byte // what is left to read
	text string // the whole record
	err  error
}

var errTruncated = errors.New("truncated record")

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.buf = nil
}

func (r *reader) int() int64 {
	v, n := binary.Varint(r.buf)
	if n <= 0 {
		r.fail(errTruncated)
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

// count reads a length, which cannot exceed the bytes left (each item
// takes at least one).
func (r *reader) count() int {
	v, n := binary.Uvarint(r.buf)
	if n <= 0 || v > uint64(len(r.buf)-n) {
		r.fail(errTruncated)
		return 0
	}
	r.buf = r.buf[n:]
	return int(v)
}

func (r *reader) string() string {
	n := r.count()
	at := len(r.text) - len(r.buf)
	r.buf = r.buf[n:]
	return r.text[at : at+n]
}

func (r *reader) strings() []string {
	n := r.count()
	if n == 0 {
		return nil
	}
	s := make([]string, n)
	for i := range s {
		s[i] = r.string()
	}
	return s
}

func appendStrings(b []byte, s []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	for _, v := range s {
		b = appendString(b, v)
	}
	return b
}

func (m *Message) appendBinary(b []byte) []byte {
	b = appendString(b, m.ID)
	b = appendString(b, m.Tenant)
	b = appendString(b, m.Type)
	b = appendInt(b, m.CreatedAt)
	b = appendString(b, m.IdempotencyKey)
	b = appendStrings(b, m.Deliveries)
	for _, n := range [...]int{m.Pending, m.Succeeded, m.Failed, m.Cancelled} {
		b = appendInt(b, int64(n))
	}
	return b
}

func (m *Message) readBinary(r *reader) {
	m.ID, m.Tenant, m.Type = r.string(), r.string(), r.string()
	m.CreatedAt = r.int()
	m.IdempotencyKey = r.string()
	m.Deliveries = r.strings()
	if m.Deliveries == nil {
		m.Deliveries = []string{}
	}
	m.Pending, m.Succeeded, m.Failed, m.Cancelled = int(r.int()), int(r.int()), int(r.int()), int(r.int())
}

func (d *Delivery) appendBinary(b []byte) []byte {
	b = appendString(b, d.ID)
	b = appendString(b, d.MessageID)
	b = appendString(b, d.EndpointID)
	b = appendString(b, d.URL)
	b = appendString(b, d.Status)
	b = appendInt(b, int64(d.AttemptCount))
	b = appendInt(b, int64(d.RoundAttempts))
	b = appendInt(b, d.FirstAttemptAt)
	b = appendInt(b, d.NextAttemptAt)
	b = appendInt(b, int64(d.LastStatusCode))
	b = appendString(b, d.LastError)
	b = binary.AppendUvarint(b, uint64(len(d.Attempts)))
	for _, a := range d.Attempts {
		b = appendInt(b, a.At)
		b = appendInt(b, int64(a.StatusCode))
		b = appendString(b, a.Error)
		b = appendInt(b, a.DurationMS)
	}
	return b
}

func (d *Delivery) readBinary(r *reader) {
	d.ID, d.MessageID, d.EndpointID, d.URL, d.Status = r.string(), r.string(), r.string(), r.string(), r.string()
	d.AttemptCount, d.RoundAttempts = int(r.int()), int(r.int())
	d.FirstAttemptAt, d.NextAttemptAt = r.int(), r.int()
	d.LastStatusCode = int(r.int())
	d.LastError = r.string()
	d.Attempts = nil
	if n := r.count(); n > 0 {
		d.Attempts = make([]Attempt, n)
		for i := range d.Attempts {
			a := &d.Attempts[i]
			a.At, a.StatusCode, a.Error, a.DurationMS = r.int(), int(r.int()), r.string(), r.int()
		}
	}
}

func (t *Tenant) appendBinary(b []byte) []byte {
	b = appendString(b, t.ID)
	for _, n := range [...]int{t.Endpoints, t.Pending, t.Messages, t.Tokens} {
		b = appendInt(b, int64(n))
	}
	return b
}

func (t *Tenant) readBinary(r *reader) {
	t.ID = r.string()
	t.Endpoints, t.Pending, t.Messages, t.Tokens = int(r.int()), int(r.int()), int(r.int()), int(r.int())
}

func (e *Endpoint) appendBinary(b []byte) []byte {
	b = appendString(b, e.ID)
	b = appendString(b, e.Tenant)
	b = appendString(b, e.URL)
	b = appendString(b, e.Name)
	b = appendStrings(b, e.EventTypes)
	b = appendString(b, e.State)
	b = appendInt(b, int64(e.RateLimitPerS))
	b = binary.AppendUvarint(b, uint64(len(e.Secrets)))
	for _, s := range e.Secrets {
		b = appendString(b, s.Key)
		b = appendInt(b, s.ExpiresAt)
	}
	b = appendInt(b, e.CreatedAt)
	b = appendInt(b, e.UpdatedAt)
	b = appendString(b, e.DisabledReason)
	b = appendInt(b, e.DisabledAt)
	b = appendInt(b, e.Health.FailingSince)
	b = appendInt(b, int64(e.Health.Failures))
	return appendInt(b, e.Health.BreakerOpenedAt)
}

func (e *Endpoint) readBinary(r *reader) {
	e.ID, e.Tenant, e.URL, e.Name = r.string(), r.string(), r.string(), r.string()
	e.EventTypes = r.strings()
	e.State = r.string()
	e.RateLimitPerS = int(r.int())
	e.Secrets = nil
	if n := r.count(); n > 0 {
		e.Secrets = make([]Secret, n)
		for i := range e.Secrets {
			e.Secrets[i] = Secret{Key: r.string(), ExpiresAt: r.int()}
		}
	}
	e.CreatedAt, e.UpdatedAt = r.int(), r.int()
	e.DisabledReason, e.DisabledAt = r.string(), r.int()
	e.Health = EndpointHealth{FailingSince: r.int(), Failures: int(r.int()), BreakerOpenedAt: r.int()}
}
