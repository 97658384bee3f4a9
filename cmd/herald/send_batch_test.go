package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCLISendBatch: herald send --batch sends a file's messages in one
// call and prints one result per message.
func TestCLISendBatch(t *testing.T) {
	env := append(admin(t), "HERALD_TENANT=cli-batch")
	file := filepath.Join(t.TempDir(), "batch.json")
	msgs := `[{"type": "t.a", "data": {"n": 1}, "idempotency_key": "b1"}, {"type": "t.a", "data": []}]`
	if err := os.WriteFile(file, []byte(msgs), 0o600); err != nil {
		t.Fatal(err)
	}
	out := decodeOut[batchAnswer](t, "send --batch", runBin(t, env, "send", "--batch", file).ok(t, "send --batch"))
	if len(out.Data) != 2 || out.Data[0].ID == "" || out.Data[1].Error == nil || out.Data[1].Error.Code != codeInvalidArgument {
		t.Fatalf("send --batch: %+v", out.Data)
	}
	again := decodeOut[batchAnswer](t, "send --batch", runBin(t, env, "send", "--batch", file).ok(t, "send --batch again"))
	if again.Data[0].ID != out.Data[0].ID || !*again.Data[0].Replayed {
		t.Errorf("send --batch again: %+v, want %s replayed", again.Data[0], out.Data[0].ID)
	}
	if err := os.WriteFile(file, []byte(`{"type": "t.a"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	runBin(t, env, "send", "--batch", file).failsWith(t, "send --batch of an object", 2, "not a JSON array")
	runBin(t, env, "send", "--batch", file, "--type", "t.a").failsWith(t, "send --batch --type", 2, "--batch takes")
}
