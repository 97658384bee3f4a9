package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// batchAnswerOf decodes a batch answer.
func batchAnswerOf(t *testing.T, r response) []batchItem {
	t.Helper()
	var out batchAnswer
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	return out.Data
}

func TestAPIMessageBatch(t *testing.T) {
	s := startAPI(t, apiOptions{})
	body := `{"messages": [
		{"type": "order.paid", "data": {"n": 1}, "idempotency_key": "k1"},
		{"type": "not a type", "data": {}},
		{"type": "order.paid", "data": {"n": 1}, "idempotency_key": "k1"},
		{"type": "order.paid", "data": {"n": 2}, "idempotency_key": "k1"},
		{"type": "order.paid", "data": {}, "webhook_config": {"user_metadata": {"a": 1}}}]}`
	items := batchAnswerOf(t, expect(t, s.call(t, "POST", "/v1/messages/batch", body), 202))
	if len(items) != 5 {
		t.Fatalf("%d items, want 5", len(items))
	}
	first := items[0]
	if !strings.HasPrefix(first.ID, "msg_") || first.Replayed == nil || *first.Replayed || first.Error != nil {
		t.Errorf("first item: %+v", first)
	}
	if e := items[1].Error; e == nil || e.Code != codeInvalidArgument || !strings.HasPrefix(e.Message, "type: ") || items[1].ID != "" {
		t.Errorf("invalid item: %+v", items[1])
	}
	if it := items[2]; it.ID != first.ID || it.Replayed == nil || !*it.Replayed {
		t.Errorf("the key again: %+v, want %s replayed", it, first.ID)
	}
	if e := items[3].Error; e == nil || e.Code != codeKeyReused {
		t.Errorf("the key for another request: %+v", items[3])
	}
	if it := items[4]; it.ID == "" || it.Status != "succeeded" { // no endpoint: nothing to deliver
		t.Errorf("last item: %+v", it)
	}
	expect(t, s.call(t, "GET", "/v1/messages/"+items[4].ID, ""), 200)

	// Across batches, and under a tenant.
	again := batchAnswerOf(t, expect(t, s.call(t, "POST", "/v1/messages/batch",
		`{"messages": [{"type": "order.paid", "data": {"n": 1}, "idempotency_key": "k1"}]}`), 202))
	if len(again) != 1 || again[0].ID != first.ID || !*again[0].Replayed {
		t.Errorf("the key in a second batch: %+v", again)
	}
	acme := batchAnswerOf(t, expect(t, s.call(t, "POST", "/v1/tenants/acme/messages/batch",
		`{"messages": [{"type": "order.paid", "data": {"n": 1}, "idempotency_key": "k1"}]}`), 202))
	if acme[0].ID == first.ID || *acme[0].Replayed {
		t.Errorf("another tenant's key: %+v", acme)
	}
	expect(t, s.call(t, "GET", "/v1/tenants/acme/messages/"+acme[0].ID, ""), 200)

	// Bounds: 1 to 1,000 messages and 4 MiB, a body larger than a single
	// message may be.
	many := func(n int, data string) string {
		ms := make([]string, n)
		for i := range ms {
			ms[i] = fmt.Sprintf(`{"type": "t", "data": {"d": %q}}`, data)
		}
		return `{"messages": [` + strings.Join(ms, ",") + `]}`
	}
	for _, b := range []string{`{"messages": []}`, many(1001, ""), `{"messages": [{"type": "t", "data": {}, "extra": 1}]}`} {
		if code := expect(t, s.call(t, "POST", "/v1/messages/batch", b), 400).errCode(t); code != codeInvalidArgument {
			t.Errorf("code %s", code)
		}
	}
	big := many(3, strings.Repeat("x", maxBodyBytes/2))
	if items := batchAnswerOf(t, expect(t, s.call(t, "POST", "/v1/messages/batch", big), 202)); len(items) != 3 || items[0].Error != nil {
		t.Errorf("a batch over 1 MiB: %+v", items)
	}
	expect(t, s.call(t, "POST", "/v1/messages/batch", many(5, strings.Repeat("x", maxBatchBodyBytes/4))), 413)
}
