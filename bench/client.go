package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	neturl "net/url"
	"time"
)

// Client talks to a Herald cluster's API, moving to the next node when one
// is unreachable or has no leader, as a production client would.
type Client struct {
	URLs  []string
	Token string
	HTTP  *http.Client
}

// NewClient returns a client for the given node URLs with a pool sized for
// concurrency.
func NewClient(urls []string, token string, concurrency int) *Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = concurrency
	tr.MaxIdleConns = concurrency * len(urls)
	return &Client{URLs: urls, Token: token, HTTP: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// errRetry marks answers worth retrying on another node.
var errRetry = errors.New("bench: retry")

// do sends one request to node i and decodes a 2xx JSON answer into out.
func (c *Client) do(ctx context.Context, i int, method, path string, header http.Header, body []byte, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.URLs[i]+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errRetry, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%w: %v", errRetry, err)
	}
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode >= 500:
		return resp.StatusCode, fmt.Errorf("%w: %s: %s", errRetry, resp.Status, raw)
	case resp.StatusCode >= 300:
		return resp.StatusCode, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %v", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// call retries a request across the nodes, starting at start, until it
// gets an answer that is not worth retrying or ctx ends.
func (c *Client) call(ctx context.Context, start int, method, path string, header http.Header, body []byte, out any) (int, error) {
	return acrossNodes(ctx, start, len(c.URLs), func(i int) (int, error) {
		return c.do(ctx, i, method, path, header, body, out)
	})
}

// acrossNodes calls try with node start, then with the next nodes in turn,
// 25 ms apart, until it returns an error other than errRetry or ctx ends.
func acrossNodes[T any](ctx context.Context, start, nodes int, try func(node int) (T, error)) (T, error) {
	for i := start; ; i++ {
		v, err := try(i % nodes)
		if !errors.Is(err, errRetry) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// CreateEndpoint registers url, subscribed to every type, and returns the
// endpoint's id and secret.
func (c *Client) CreateEndpoint(ctx context.Context, url string) (id, secret string, err error) {
	return c.CreateEndpointFor(ctx, url, nil)
}

// CreateEndpointFor registers url subscribed to eventTypes (every type when
// empty) and returns the endpoint's id and secret.
func (c *Client) CreateEndpointFor(ctx context.Context, url string, eventTypes []string) (id, secret string, err error) {
	body, _ := json.Marshal(map[string]any{"url": url, "event_types": eventTypes})
	var ep struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	_, err = c.call(ctx, 0, http.MethodPost, "/v1/endpoints", nil, body, &ep)
	return ep.ID, ep.Secret, err
}

// CreateTenantEndpoint registers url in tenant, subscribed to eventTypes
// (all types when empty), starting at node start, and returns its id.
func (c *Client) CreateTenantEndpoint(ctx context.Context, start int, tenant, url string, eventTypes []string) (string, error) {
	body, _ := json.Marshal(map[string]any{"url": url, "event_types": eventTypes})
	var ep struct {
		ID string `json:"id"`
	}
	status, err := c.call(ctx, start, http.MethodPost, "/v1/tenants/"+neturl.PathEscape(tenant)+"/endpoints", nil, body, &ep)
	if status == http.StatusNotFound || status == http.StatusMethodNotAllowed {
		err = fmt.Errorf("%w: %v", errNoTenantRoutes, err)
	}
	return ep.ID, err
}

// Send enqueues a message under an idempotency key, starting at node
// start and retrying on others, and returns the message id once a node
// acknowledged it.
func (c *Client) Send(ctx context.Context, start int, key string, body []byte) (string, error) {
	var msg struct {
		ID string `json:"id"`
	}
	h := http.Header{"Idempotency-Key": {key}}
	_, err := c.call(ctx, start, http.MethodPost, "/v1/messages", h, body, &msg)
	return msg.ID, err
}

// maxBatch is the most messages one batch enqueue takes.
const maxBatch = 1000

// SendBatch enqueues one message per key, each with body and its key as
// idempotency key, in one call, starting at node start and retrying on
// others, and returns their ids in order once a node acknowledged them.
func (c *Client) SendBatch(ctx context.Context, start int, keys []string, body []byte) ([]string, error) {
	req, err := batchRequest(keys, body)
	if err != nil {
		return nil, err
	}
	var answer batchAnswer
	if _, err := c.call(ctx, start, http.MethodPost, "/v1/messages/batch", nil, req, &answer); err != nil {
		return nil, err
	}
	return answer.ids(len(keys))
}

// batchRequest returns the body of a batch enqueue: one message per key,
// each body with its key as idempotency key.
func batchRequest(keys []string, body []byte) ([]byte, error) {
	var msg map[string]json.RawMessage
	if err := json.Unmarshal(body, &msg); err != nil {
		return nil, err
	}
	items := make([]map[string]json.RawMessage, len(keys))
	for i, k := range keys {
		items[i] = maps.Clone(msg)
		items[i]["idempotency_key"], _ = json.Marshal(k)
	}
	return json.Marshal(map[string]any{"messages": items})
}

// batchAnswer is a batch enqueue's answer.
type batchAnswer struct {
	Data []struct {
		ID    string `json:"id"`
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	} `json:"data"`
}

// ids returns the messages' ids in order, or the first item's error.
func (a *batchAnswer) ids(n int) ([]string, error) {
	if len(a.Data) != n {
		return nil, fmt.Errorf("batch of %d answered with %d results", n, len(a.Data))
	}
	ids := make([]string, n)
	for i, d := range a.Data {
		if d.Error != nil {
			return nil, fmt.Errorf("batch item %d: %s: %s", i, d.Error.Code, d.Error.Message)
		}
		ids[i] = d.ID
	}
	return ids, nil
}

// Breaker returns an endpoint's circuit breaker state: closed or open.
func (c *Client) Breaker(ctx context.Context, id string) (string, error) {
	var ep struct {
		Breaker string `json:"breaker"`
	}
	_, err := c.call(ctx, 0, http.MethodGet, "/v1/endpoints/"+neturl.PathEscape(id), nil, nil, &ep)
	return ep.Breaker, err
}

// Metric returns the value of the unlabelled metric name on node i.
func (c *Client) Metric(ctx context.Context, i int, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URLs[i]+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return parseMetric(resp.Body, name)
}

// MessageStatus returns a message's aggregate status.
func (c *Client) MessageStatus(ctx context.Context, id string) (string, error) {
	var msg struct {
		Status string `json:"status"`
	}
	_, err := c.call(ctx, 0, http.MethodGet, "/v1/messages/"+id, nil, nil, &msg)
	return msg.Status, err
}
