package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// poster is the load generator's HTTP client: one per client goroutine,
// with one keep-alive HTTP/1.1 connection per node, each written and read
// in the caller's goroutine.
//
// net/http's client hands every request to a writer goroutine and every
// answer back from a reader goroutine: below saturation, with the
// connections idle between exchanges, each hand-off wakes a thread, and
// the load generator spent most of its CPU in those wake-ups. Herald sees
// the same requests (net/http's headers but Accept-Encoding, which Herald
// ignores), one connection per client and node, kept alive.
type poster struct {
	urls  []string
	token string
	conns []*rawConn
}

func newPoster(urls []string, token string) *poster {
	return &poster{urls: urls, token: token, conns: make([]*rawConn, len(urls))}
}

// close closes the poster's connections.
func (p *poster) close() {
	for i, c := range p.conns {
		if c != nil {
			c.close()
			p.conns[i] = nil
		}
	}
}

// send enqueues one message under an idempotency key, starting at node
// start and moving on as Client.Send does, and returns its id.
func (p *poster) send(ctx context.Context, start int, key string, body []byte) (string, error) {
	raw, err := p.call(ctx, start, "/v1/messages", key, body)
	if err != nil {
		return "", err
	}
	if id, ok := leadingID(raw); ok {
		return id, nil
	}
	var msg struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &msg); err != nil {
		return "", fmt.Errorf("POST /v1/messages: %v", err)
	}
	return msg.ID, nil
}

// leadingID returns the id of an answer that begins {"id":"<id>", as
// Herald's do, when the id needs no unescaping; decoding the whole answer
// cost the load generator more than the rest of its bookkeeping.
func leadingID(raw []byte) (string, bool) {
	rest, ok := bytes.CutPrefix(raw, []byte(`{"id":"`))
	if !ok {
		return "", false
	}
	end := bytes.IndexByte(rest, '"')
	if end <= 0 || bytes.IndexByte(rest[:end], '\\') >= 0 || len(rest) == end+1 || (rest[end+1] != ',' && rest[end+1] != '}') {
		return "", false
	}
	return string(rest[:end]), true
}

// sendBatch enqueues one message per key in one call, as Client.SendBatch
// does.
func (p *poster) sendBatch(ctx context.Context, start int, keys []string, body []byte) ([]string, error) {
	req, err := batchRequest(keys, body)
	if err != nil {
		return nil, err
	}
	raw, err := p.call(ctx, start, "/v1/messages/batch", "", req)
	if err != nil {
		return nil, err
	}
	var answer batchAnswer
	if err := json.Unmarshal(raw, &answer); err != nil {
		return nil, fmt.Errorf("POST /v1/messages/batch: %v", err)
	}
	return answer.ids(len(keys))
}

// call posts body to path, starting at node start, until an answer not
// worth retrying (see Client.call) or ctx ends, and returns a 2xx answer's
// body, valid until the poster's next exchange.
func (p *poster) call(ctx context.Context, start int, path, key string, body []byte) ([]byte, error) {
	return acrossNodes(ctx, start, len(p.urls), func(i int) ([]byte, error) {
		return p.do(ctx, i, path, key, body)
	})
}

// do posts once to node i, as Client.do does.
func (p *poster) do(ctx context.Context, i int, path, key string, body []byte) ([]byte, error) {
	c := p.conns[i]
	if c == nil {
		var err error
		if c, err = dialRaw(ctx, p.urls[i]); err != nil {
			return nil, fmt.Errorf("%w: %v", errRetry, err)
		}
		p.conns[i] = c
	}
	status, raw, err := c.post(path, key, p.token, body)
	if err != nil || c.broken {
		c.close()
		p.conns[i] = nil
	}
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %v", errRetry, err)
	case status >= 500:
		return nil, fmt.Errorf("%w: %d: %s", errRetry, status, raw)
	case status >= 300 || status < 200:
		return nil, fmt.Errorf("POST %s: %d: %s", path, status, raw)
	}
	return raw, nil
}

// rawTimeout bounds one exchange, as the Client's http.Client.Timeout does.
const rawTimeout = 10 * time.Second

// rawConn is one HTTP/1.1 connection. It is not safe for concurrent use.
type rawConn struct {
	host  string // host:port, for the Host header
	ctx   context.Context
	nc    net.Conn
	br    *bufio.Reader
	stop  func() bool // unregisters the context's AfterFunc
	wbuf  []byte      // the request being written
	body  []byte      // the last answer's body
	renew time.Time   // when the deadline is next moved
	// broken is set when the connection cannot carry another exchange:
	// the server asked to close it, or its answer was not fully read.
	broken bool
}

// dialRaw connects to url (http://host:port). When ctx ends, the
// connection's exchanges fail at once.
func dialRaw(ctx context.Context, url string) (*rawConn, error) {
	host, ok := strings.CutPrefix(url, "http://")
	if !ok || strings.Contains(host, "/") {
		return nil, fmt.Errorf("bench: cannot post to %q: want http://host:port", url)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	c := &rawConn{host: host, ctx: ctx, nc: nc, br: bufio.NewReaderSize(nc, 4096)}
	c.stop = context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	return c, nil
}

func (c *rawConn) close() {
	c.stop()
	c.nc.Close()
}

// post sends one POST and reads its answer: the status and the body,
// valid until the next exchange.
func (c *rawConn) post(path, key, token string, body []byte) (int, []byte, error) {
	w := c.wbuf[:0]
	w = append(w, "POST "...)
	w = append(w, path...)
	w = append(w, " HTTP/1.1\r\nHost: "...)
	w = append(w, c.host...)
	w = append(w, "\r\nUser-Agent: Go-http-client/1.1\r\nContent-Type: application/json\r\nContent-Length: "...)
	w = strconv.AppendInt(w, int64(len(body)), 10)
	if key != "" {
		w = append(w, "\r\nIdempotency-Key: "...)
		w = append(w, key...)
	}
	if token != "" {
		w = append(w, "\r\nAuthorization: Bearer "...)
		w = append(w, token...)
	}
	w = append(w, "\r\n\r\n"...)
	w = append(w, body...)
	c.wbuf = w
	// The deadline moves when less than half of rawTimeout is left: each
	// exchange still gets at least rawTimeout/2, without a timer update on
	// every one.
	if now := time.Now(); now.After(c.renew) {
		if err := c.nc.SetDeadline(now.Add(rawTimeout)); err != nil {
			return 0, nil, err
		}
		c.renew = now.Add(rawTimeout / 2)
	}
	// Checked after the deadline moved: the context's AfterFunc, which
	// moves it into the past, stops only the exchanges under way.
	if err := c.ctx.Err(); err != nil {
		return 0, nil, err
	}
	if _, err := c.nc.Write(w); err != nil {
		return 0, nil, err
	}
	status, err := c.readResponse()
	if err != nil {
		return 0, nil, err
	}
	return status, c.body, nil
}

// maxRawBody bounds an answer's body.
const maxRawBody = 64 << 20

var errMalformed = errors.New("bench: malformed HTTP answer")

// readResponse reads one answer into c.body and returns its status. It
// reads bodies of a Content-Length, chunked, or up to the connection's
// close.
func (c *rawConn) readResponse() (int, error) {
	line, err := c.readLine()
	if err != nil {
		return 0, err
	}
	// "HTTP/1.1 202 Accepted"
	proto, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok || !bytes.HasPrefix(proto, []byte("HTTP/1.")) || len(rest) < 3 {
		return 0, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	status, err := strconv.Atoi(string(rest[:3]))
	if err != nil {
		return 0, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	if string(proto) == "HTTP/1.0" {
		c.broken = true
	}
	length, chunked := -1, false
	for {
		line, err := c.readLine()
		if err != nil {
			return 0, err
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, fmt.Errorf("%w: header %q", errMalformed, line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "Content-Length"):
			n, err := strconv.Atoi(string(value))
			if err != nil || n < 0 || n > maxRawBody {
				return 0, fmt.Errorf("%w: Content-Length %q", errMalformed, value)
			}
			length = n
		case asciiEqualFold(name, "Transfer-Encoding"):
			if !asciiEqualFold(value, "chunked") {
				return 0, fmt.Errorf("%w: Transfer-Encoding %q", errMalformed, value)
			}
			chunked = true
		case asciiEqualFold(name, "Connection"):
			if asciiEqualFold(value, "close") {
				c.broken = true
			}
		}
	}
	c.body = c.body[:0]
	switch {
	case status == 204 || status == 304 || status < 200:
		if status < 200 {
			c.broken = true // 1xx: not expected from Herald; start afresh
		}
	case chunked:
		err = c.readChunked()
	case length >= 0:
		c.body = growTo(c.body, length)
		_, err = io.ReadFull(c.br, c.body)
	default: // to the connection's close
		c.broken = true
		c.body, err = readAllInto(c.body, io.LimitReader(c.br, maxRawBody))
	}
	if err != nil {
		c.broken = true
		return 0, err
	}
	return status, nil
}

// readChunked reads a chunked body into c.body.
func (c *rawConn) readChunked() error {
	for {
		line, err := c.readLine()
		if err != nil {
			return err
		}
		size, _, _ := bytes.Cut(line, []byte(";"))
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		if err != nil || n < 0 || int64(len(c.body))+n > maxRawBody {
			return fmt.Errorf("%w: chunk size %q", errMalformed, line)
		}
		if n == 0 {
			for { // trailers, up to the blank line
				line, err := c.readLine()
				if err != nil {
					return err
				}
				if len(line) == 0 {
					return nil
				}
			}
		}
		at := len(c.body)
		c.body = growTo(c.body, at+int(n))
		if _, err := io.ReadFull(c.br, c.body[at:]); err != nil {
			return err
		}
		if line, err := c.readLine(); err != nil {
			return err
		} else if len(line) != 0 {
			return fmt.Errorf("%w: no CRLF after a chunk", errMalformed)
		}
	}
}

// readLine reads one line without its CRLF; it is valid until the next
// read.
func (c *rawConn) readLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			err = fmt.Errorf("%w: line longer than %d bytes", errMalformed, c.br.Size())
		}
		return nil, err
	}
	return bytes.TrimSuffix(line[:len(line)-1], []byte("\r")), nil
}

// growTo returns b resized to n bytes, reusing its array when it is large
// enough.
func growTo(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	return append(b[:cap(b)], make([]byte, n-cap(b))...)[:n]
}

// readAllInto appends what r has to b.
func readAllInto(b []byte, r io.Reader) ([]byte, error) {
	var buf bytes.Buffer
	buf.Write(b)
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

// asciiEqualFold reports whether b equals s, ignoring ASCII case.
func asciiEqualFold[T []byte | string](b T, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(s) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
