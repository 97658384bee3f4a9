package store

import (
	"fmt"
	"io"
	"strings"
	"time"
)

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// maxClockSkew bounds how far apart the clocks of the nodes that stamp ids
// may be; scans that stop at an id's time allow this much disorder.
const maxClockSkew = time.Minute

// NewID returns prefix + "_" + a 26-character ULID: 48 bits of millisecond
// time then 80 random bits from entropy, in Crockford base32. Ids of one
// prefix sort by creation time, which keeps bbolt inserts appending and
// makes the message bucket its own time index.
func NewID(prefix string, at time.Time, entropy io.Reader) (string, error) {
	var b [16]byte
	ms := uint64(at.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	if _, err := io.ReadFull(entropy, b[6:]); err != nil {
		return "", fmt.Errorf("store: new id: %w", err)
	}
	// 128 bits → 26 base32 digits (the first carries 3 bits).
	var out [26]byte
	hi := uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
	lo := uint64(b[8])<<56 | uint64(b[9])<<48 | uint64(b[10])<<40 | uint64(b[11])<<32 |
		uint64(b[12])<<24 | uint64(b[13])<<16 | uint64(b[14])<<8 | uint64(b[15])
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return prefix + "_" + string(out[:]), nil
}

// timeKey returns the smallest id of the prefix made at or after the Unix
// nanosecond time at: a key to seek to.
func timeKey(prefix string, at int64) string {
	id, _ := NewID(prefix, time.Unix(0, max(at, 0)), zeros{}) // zeros never fails
	return id
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// messageTime returns the Unix nanosecond time encoded in an id made by
// NewID, or 0 if the id is not of that form.
func messageTime(id string) int64 {
	i := strings.IndexByte(id, '_')
	if i < 0 || len(id)-i-1 != 26 {
		return 0
	}
	var ms uint64
	for _, c := range id[i+1 : i+11] { // the first 10 digits: 2 pad bits, then the 48-bit time
		d := strings.IndexRune(crockford, c)
		if d < 0 {
			return 0
		}
		ms = ms<<5 | uint64(d)
	}
	return int64(ms) * int64(time.Millisecond)
}
