package store

import (
	"fmt"

	"github.com/hashicorp/go-msgpack/v2/codec"
)

// Records and log entries are MessagePack (the encoding hashicorp/raft
// itself uses), keyed by the records' json field names: about three times
// cheaper to decode than JSON, which dominated the apply path's CPU. The
// handle is configured once and safe for concurrent use.
var mh = func() *codec.MsgpackHandle {
	h := &codec.MsgpackHandle{WriteExt: true} // []byte as bin, not str
	h.RawToString = true
	return h
}()

// encode returns the MessagePack encoding of v in a fresh slice.
func encode(v any) ([]byte, error) {
	var b []byte
	if err := codec.NewEncoderBytes(&b, mh).Encode(v); err != nil {
		return nil, fmt.Errorf("store: encode %T: %w", v, err)
	}
	return b, nil
}

// decode decodes a record written by encode into v.
func decode(raw []byte, v any) error {
	if err := codec.NewDecoderBytes(raw, mh).Decode(v); err != nil {
		return fmt.Errorf("store: decode %T: %w", v, err)
	}
	return nil
}
