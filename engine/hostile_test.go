package engine

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// hostileReceiver accepts connections on loopback and answers every request
// with answer's bytes, whatever they are.
func hostileReceiver(t *testing.T, answer func() string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				req.Body.Close()
				c.Write([]byte(answer()))
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/hook"
}

// A receiver controls the status line, the headers and the connection of
// its answers. None of it may grow what Herald stores and replicates about
// an attempt beyond a few hundred bytes: not a multi-megabyte status line,
// not megabytes of headers, not invalid UTF-8.
func TestHostileReceiverCannotGrowTheState(t *testing.T) {
	t.Parallel()
	huge := strings.Repeat("\xff\xfex", 2<<20)
	cases := map[string]func() string{
		"status line": func() string { return "HTTP/1.1 500 " + huge + "\r\nContent-Length: 0\r\n\r\n" },
		"status code": func() string { return "HTTP/1.1 " + huge + " oops\r\nContent-Length: 0\r\n\r\n" },
		// Under the header limit: the transport's error quotes it.
		"short status code": func() string { return "HTTP/1.1 " + huge[:8<<10] + " oops\r\nContent-Length: 0\r\n\r\n" },
		"short status line": func() string { return "HTTP/1.1 500 " + huge[:8<<10] + "\r\nContent-Length: 0\r\n\r\n" },
		"headers": func() string {
			var b strings.Builder
			b.WriteString("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n")
			for i := 0; i < 64; i++ {
				b.WriteString("X-Junk: " + huge[:1<<10] + "\r\n")
			}
			b.WriteString("Content-Length: 0\r\n\r\n")
			return b.String()
		},
		"garbage": func() string { return huge },
	}
	e := openEngine(t, withSchedule(10*time.Millisecond))
	for name, answer := range cases {
		url := hostileReceiver(t, answer)
		msg := mustEnqueue(t, e, MessageInput{Type: "job.done", URIs: []string{url}})
		m := waitStatus(t, e, msg.ID, "failed")
		for _, a := range m.Deliveries[0].Attempts {
			if len(a.Error) > 256 || !utf8.ValidString(a.Error) {
				t.Errorf("%s: attempt error of %d bytes (valid UTF-8: %v): %.80q…", name, len(a.Error), utf8.ValidString(a.Error), a.Error)
			}
		}
		t.Logf("%s: stored error %q", name, m.Deliveries[0].LastError)
	}
	dump, err := e.store.Dump()
	if err != nil {
		t.Fatal(err)
	}
	for _, bucket := range []string{"messages", "deliveries"} {
		for k, v := range dump[bucket] {
			if len(v) > 4<<10 {
				t.Errorf("%s record %s is %d bytes", bucket, k, len(v))
			}
		}
	}
}
