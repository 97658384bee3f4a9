package store

import (
	"fmt"

	"github.com/hashicorp/go-msgpack/v2/codec"
)

// Log entries and the records without a compact encoding of their own
// (see binaryRecord) are MessagePack (the encoding hashicorp/raft itself
// uses), keyed by the records' json field names: about three times
// cheaper to decode than JSON. The handle is configured once and safe for
// concurrent use.
var mh = func() *codec.MsgpackHandle {
	h := &codec.MsgpackHandle{WriteExt: true} // []byte as bin, not str
	h.RawToString = true
	return h
}()

// encode returns the encoding of v in a fresh slice: the compact one of
// a binaryRecord, else MessagePack.
func encode(v any) ([]byte, error) {
	if rec, ok := v.(binaryRecord); ok {
		return encodeBinary(rec), nil
	}
	var b []byte
	if err := codec.NewEncoderBytes(&b, mh).Encode(v); err != nil {
		return nil, fmt.Errorf("store: encode %T: %w", v, err)
	}
	return b, nil
}

// decode decodes a record written by encode into v. A binaryRecord in
// MessagePack is one of an earlier schema, which migrations read.
func decode(raw []byte, v any) error {
	if rec, ok := v.(binaryRecord); ok && len(raw) > 0 && raw[0] == binaryTag {
		if err := decodeBinary(raw, rec); err != nil {
			return fmt.Errorf("store: decode %T: %w", v, err)
		}
		return nil
	}
	if err := codec.NewDecoderBytes(raw, mh).Decode(v); err != nil {
		return fmt.Errorf("store: decode %T: %w", v, err)
	}
	return nil
}
