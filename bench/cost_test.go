package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseMetric(t *testing.T) {
	const exposition = `# HELP go_memstats_mallocs_total Total number of heap objects allocated, both live and gc-ed.
# TYPE go_memstats_mallocs_total counter
go_memstats_mallocs_total_extra 7
go_memstats_mallocs_total 1.234567e+06
herald_deliveries_scheduled{tenant="a"} 3
herald_deliveries_scheduled 12
`
	for name, want := range map[string]float64{mallocsMetric: 1234567, "herald_deliveries_scheduled": 12} {
		got, err := parseMetric(strings.NewReader(exposition), name)
		if err != nil || got != want {
			t.Errorf("%s: got %v, %v; want %v", name, got, err, want)
		}
	}
	if _, err := parseMetric(strings.NewReader(exposition), "go_gc_duration_seconds"); err == nil {
		t.Error("a missing metric: got no error")
	}
}

func TestParsePerfInstructions(t *testing.T) {
	// perf stat -x, -e instructions, as written with -o: a comment, a blank
	// line, then value,unit,event,run time,share,...
	supported := "# started on Wed Dec  2 11:13:03 2026\n\n48713923851,,instructions,7002354213,100.00,1.05,insn per cycle\n"
	if n, err := parsePerfInstructions([]byte(supported)); err != nil || n != 48713923851 {
		t.Errorf("supported: got %v, %v", n, err)
	}
	// The event may carry a modifier (instructions:u).
	if n, err := parsePerfInstructions([]byte("1200,,instructions:u,100,100.00,,\n")); err != nil || n != 1200 {
		t.Errorf("instructions:u: got %v, %v", n, err)
	}
	for _, out := range []string{
		"<not supported>,,instructions,0,100.00,,\n", // this VM
		"# started on x\n\n<not counted>,,instructions,0,0.00,,\n",
	} {
		if _, err := parsePerfInstructions([]byte(out)); !errors.Is(err, errPerfUnsupported) {
			t.Errorf("%q: got %v, want errPerfUnsupported", out, err)
		}
	}
	for _, out := range []string{"", "Error: no permission\n", "abc,,instructions,1,100,,\n"} {
		if _, err := parsePerfInstructions([]byte(out)); err == nil || errors.Is(err, errPerfUnsupported) {
			t.Errorf("%q: got %v, want a parse error", out, err)
		}
	}
}

func TestCostPerMessage(t *testing.T) {
	var c Cost
	// 6.6 s of server CPU, 11.2 M allocations, 19,990 of 20,000 delivered;
	// the bench 1.8 s for 20,000 messages, the baseline 1.5 s for 20,000
	// exchanges; no instruction count.
	c.fill(6.6, 11.2e6, -1, 19990, 1.8, 20000, 1.5, 20000)
	near := func(got, want float64) bool { return got > want-1e-6 && got < want+1e-6 }
	if !near(c.ServerCPUPerMsgUS, 6.6e6/19990) || c.ServerAllocsPerMsg == nil || !near(*c.ServerAllocsPerMsg, 11.2e6/19990) ||
		c.ServerInstrPerMsg != nil || !near(c.BenchCPUPerMsgUS, 90) || !near(c.BaselineCPUPerExchangeUS, 75) || !near(c.BenchCPURatio, 1.2) {
		t.Errorf("got %+v", c)
	}
	c = Cost{}
	c.fill(1, -1, 3e9, 1000, 0, 1000, 0, 1000)
	if c.ServerAllocsPerMsg != nil || c.ServerInstrPerMsg == nil || *c.ServerInstrPerMsg != 3e6 || c.BenchCPURatio != 0 {
		t.Errorf("unknown allocations, known instructions, no bench CPU: got %+v", c)
	}
	c = Cost{}
	c.fill(1, 10, 10, 0, 1, 0, 1, 0) // nothing delivered: no division by zero
	if c.ServerCPUPerMsgUS != 0 || c.ServerAllocsPerMsg != nil || c.ServerInstrPerMsg != nil || c.BenchCPUPerMsgUS != 0 {
		t.Errorf("nothing delivered: got %+v", c)
	}
}

func TestCostTable(t *testing.T) {
	allocs := 553.4
	res := []*Result{{Scenario: "steady", Nodes: 1, DeliveredPerS: 3100, Cost: Cost{ServerCPUPerMsgUS: 330, ServerAllocsPerMsg: &allocs,
		Instructions: "unsupported", BenchCPUPerMsgUS: 88, BaselineCPUPerExchangeUS: 80, BenchCPURatio: 1.1}}}
	var b bytes.Buffer
	if err := WriteTable(&b, res); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	last := strings.Fields(lines[len(lines)-1])
	want := []string{"steady", "1", "3100", "330", "553", "-", "88", "80", "1.10"}
	if fmt.Sprint(last) != fmt.Sprint(want) {
		t.Errorf("cost row %q, want %q; table:\n%s", last, want, b.String())
	}
}

func TestLeadingID(t *testing.T) {
	for raw, want := range map[string]string{
		`{"id":"msg_2abc","tenant":"default"}`: "msg_2abc",
		`{"id":"msg_2abc"}`:                    "msg_2abc",
	} {
		if id, ok := leadingID([]byte(raw)); !ok || id != want {
			t.Errorf("%s: got %q, %v", raw, id, ok)
		}
	}
	for _, raw := range []string{`{"tenant":"x","id":"m"}`, `{"id":"a\"b"}`, `{"id":""}`, `{"id":"m"x}`, `{"id":"m`, `{ "id":"m"}`} {
		if id, ok := leadingID([]byte(raw)); ok {
			t.Errorf("%s: got %q, want the slow path", raw, id)
		}
	}
}

// TestPoster checks the load generator's client against net/http servers:
// the request Herald gets, answers with a length, chunked, or closing the
// connection, and a node answering 503 that it moves on from.
func TestPoster(t *testing.T) {
	type got struct {
		method, path, host, key, auth, ctype string
		body                                 string
	}
	var mu sync.Mutex
	var reqs []got
	var conns int
	node := func(answer func(w http.ResponseWriter, n int)) *httptest.Server {
		n := 0
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			mu.Lock()
			reqs = append(reqs, got{r.Method, r.URL.Path, r.Host, r.Header.Get("Idempotency-Key"), r.Header.Get("Authorization"),
				r.Header.Get("Content-Type"), string(body)})
			n++
			i := n
			mu.Unlock()
			answer(w, i)
		}))
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				mu.Lock()
				conns++
				mu.Unlock()
			}
		}
		srv.Start()
		t.Cleanup(srv.Close)
		return srv
	}
	down := node(func(w http.ResponseWriter, _ int) { http.Error(w, "no leader", http.StatusServiceUnavailable) })
	up := node(func(w http.ResponseWriter, n int) {
		switch n % 3 {
		case 1: // a length
			fmt.Fprintf(w, `{"id":"msg_%d","tenant":"default"}`, n)
		case 2: // chunked: flushed in two parts, escaped so the slow path decodes it
			w.Write([]byte(`{"id":"msg\u005f`))
			w.(http.Flusher).Flush()
			fmt.Fprintf(w, `%d"}`, n)
		case 0: // then close
			w.Header().Set("Connection", "close")
			fmt.Fprintf(w, `{"id":"msg_%d"}`, n)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := newPoster([]string{down.URL, up.URL}, "tok")
	defer p.close()
	body := []byte(`{"type":"t","data":{}}`)
	for i := range 6 {
		start := 1
		if i == 0 {
			start = 0 // the first starts at the node that answers 503
		}
		id, err := p.send(ctx, start, fmt.Sprintf("k-%d", i), body)
		if want := fmt.Sprintf("msg_%d", i+1); err != nil || id != want {
			t.Fatalf("send %d: got %q, %v; want %s", i, id, err, want)
		}
	}
	mu.Lock()
	reqs, nconns := reqs, conns
	mu.Unlock()
	if len(reqs) != 7 {
		t.Fatalf("%d requests, want 7 (one 503, six answered): %+v", len(reqs), reqs)
	}
	for i, r := range reqs {
		key := fmt.Sprintf("k-%d", max(i-1, 0))
		host := strings.TrimPrefix(up.URL, "http://")
		if i == 0 {
			host = strings.TrimPrefix(down.URL, "http://")
		}
		if r.method != "POST" || r.path != "/v1/messages" || r.host != host || r.key != key || r.auth != "Bearer tok" ||
			r.ctype != "application/json" || r.body != string(body) {
			t.Errorf("request %d: %+v", i, r)
		}
	}
	// One connection to the node that failed, then one to the other, and
	// a new one after the 3rd answer closed it: 3 in all.
	if nconns != 3 {
		t.Errorf("%d connections, want 3", nconns)
	}

	// A 4xx is not retried elsewhere: it is the caller's error.
	bad := node(func(w http.ResponseWriter, _ int) { http.Error(w, "bad", http.StatusBadRequest) })
	q := newPoster([]string{bad.URL, up.URL}, "")
	defer q.close()
	if _, err := q.send(ctx, 0, "k", body); err == nil || errors.Is(err, errRetry) || !strings.Contains(err.Error(), "400") {
		t.Errorf("a 400: got %v", err)
	}
	// An ended context stops the retries.
	ctx2, cancel2 := context.WithCancel(ctx)
	cancel2()
	r := newPoster([]string{down.URL}, "")
	defer r.close()
	if _, err := r.send(ctx2, 0, "k", body); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled context: got %v", err)
	}
}
