package engine

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

var compactSeeds = []string{
	`{}`, ` { "a" : [ 1 , -2.5e+3 , true , false , null , "x\"y\\u00e9\n" ] , "b" : { } } `,
	`[]`, `"s"`, `0`, `-0.0e0`, `01`, `1.`, `.5`, `1e`, `-`, `{"a":1,}`, `[1,]`, `{"a"}`, `{1:2}`,
	`"\x"`, "\"a\tb\"", `"\u12G4"`, `tru`, `nul`, `{"a":1}x`, `{"a":1} {}`, "\"\xff\xfe\"", `"\u2028"`,
	strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth),
	strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1),
}

// appendCompactJSON accepts exactly what encoding/json.Compact accepts and
// writes the same bytes.
func TestCompactJSONMatchesEncodingJSON(t *testing.T) {
	for _, s := range compactSeeds {
		checkCompact(t, []byte(s))
	}
}

func FuzzCompactJSON(f *testing.F) {
	for _, s := range compactSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(checkCompact)
}

func checkCompact(t *testing.T, src []byte) {
	var want bytes.Buffer
	wantErr := json.Compact(&want, src)
	got, ok := appendCompactJSON([]byte("prefix"), src)
	switch {
	case ok != (wantErr == nil):
		t.Fatalf("%q: valid=%v, encoding/json says %v", src, ok, wantErr)
	case ok && string(got) != "prefix"+want.String():
		t.Fatalf("%q: compacted to %q, encoding/json to %q", src, got[len("prefix"):], want.Bytes())
	case !ok && string(got) != "prefix":
		t.Fatalf("%q: invalid, but dst was changed to %q", src, got)
	}
}

func BenchmarkCompactObject(b *testing.B) {
	data := []byte(`{"batch_id":"b-123","status":"completed","items":[` + strings.Repeat(`{"id":12345,"ok":true,"note":"text"},`, 24) + `{"id":0}]}`)
	b.SetBytes(int64(len(data)))
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			var buf bytes.Buffer
			buf.Grow(len(data))
			if json.Compact(&buf, data) != nil {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("appendCompactJSON", func(b *testing.B) {
		for b.Loop() {
			if _, ok := appendCompactJSON(make([]byte, 0, len(data)), data); !ok {
				b.Fatal("invalid")
			}
		}
	})
}
