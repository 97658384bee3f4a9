package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
)

func init() {
	commands["send"] = command{summary: "send a message (POST /v1/messages)", run: runSend}
}

func runSend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("send", "--type T [--data JSON] [--uri U]... [--idempotency-key K] [--tenant T] [--server URL] [--api-token T]\n"+
		"       herald send --batch FILE [--tenant T] [--server URL] [--api-token T]\n\n"+
		"Sends a message and prints it as JSON. Without --uri it fans out to every\n"+
		"enabled endpoint of its tenant subscribed to its type; with --uri it goes\n"+
		"only there. --data @FILE reads the payload from a file, --data - from stdin.\n"+
		"--batch sends up to 1,000 messages in one call (POST /v1/messages/batch): FILE\n"+
		"(- for stdin) is a JSON array of {\"type\", \"data\", \"webhook_config\"?,\n"+
		"\"idempotency_key\"?}; it prints one result per message, in order.", stderr)
	cf := addClientFlags(fs)
	cf.addTenantFlag()
	typ := fs.String("type", "", "event `type`, e.g. batch.succeeded (required)")
	data := fs.String("data", "{}", "payload: a JSON `object`, @FILE or - for stdin")
	var uris stringList
	fs.Var(&uris, "uri", "deliver only to this `URL` (repeatable), signed with the cluster key")
	metadata := fs.String("user-metadata", "", "JSON `object` echoed in override deliveries (with --uri)")
	key := fs.String("idempotency-key", "", "`key` that makes a repeat within 24h return the first message")
	batch := fs.String("batch", "", "send the JSON array of messages in `FILE` (- for stdin) in one call")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("send: unexpected argument %q", fs.Arg(0))
	}
	if *batch != "" {
		if *typ != "" || *data != "{}" || len(uris) > 0 || *metadata != "" || *key != "" {
			return usagef("send: --batch takes each message's fields from FILE, not from --type, --data, --uri, --user-metadata or --idempotency-key")
		}
		return sendBatch(ctx, cf, *batch, stdout)
	}
	if *typ == "" {
		return usagef("send: --type is required")
	}
	payload, err := readData(*data)
	if err != nil {
		return err
	}
	body := createMessageRequest{Type: *typ, Data: payload}
	if len(uris) > 0 || *metadata != "" {
		body.WebhookConfig = &webhookConfig{URIs: uris}
		if *metadata != "" {
			if !json.Valid([]byte(*metadata)) {
				return usagef("send: --user-metadata is not valid JSON")
			}
			body.WebhookConfig.UserMetadata = json.RawMessage(*metadata)
		}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	h := http.Header{}
	if *key != "" {
		h.Set(headerIdempotencyKey, *key)
	}
	out, err := c.do(ctx, http.MethodPost, c.tenantPath("/v1/messages"), body, h)
	if err != nil {
		return err
	}
	return printJSON(stdout, out)
}

// sendBatch sends the messages of a file as one batch.
func sendBatch(ctx context.Context, cf *clientFlags, file string, stdout io.Writer) error {
	b, err := readBatchFile(file)
	if err != nil {
		return err
	}
	var body struct {
		Messages []json.RawMessage `json:"messages"`
	}
	if err := json.Unmarshal(b, &body.Messages); err != nil {
		return usagef("send: --batch: %s is not a JSON array of messages", file)
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	out, err := c.do(ctx, http.MethodPost, c.tenantPath("/v1/messages/batch"), body, nil)
	if err != nil {
		return err
	}
	return printJSON(stdout, out)
}

// readBatchFile reads --batch, at most a batch's body limit.
func readBatchFile(file string) ([]byte, error) {
	r := io.Reader(os.Stdin)
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, usagef("send: --batch: %v", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxBatchBodyBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBatchBodyBytes {
		return nil, usagef("send: --batch: %s is larger than %d bytes", file, maxBatchBodyBytes)
	}
	return b, nil
}

// readData reads --data: inline JSON, @FILE, or - for stdin.
func readData(v string) (json.RawMessage, error) {
	var b []byte
	switch {
	case v == "-":
		var err error
		if b, err = io.ReadAll(os.Stdin); err != nil {
			return nil, err
		}
	case strings.HasPrefix(v, "@"):
		var err error
		if b, err = os.ReadFile(v[1:]); err != nil {
			return nil, usagef("send: --data: %v", err)
		}
	default:
		b = []byte(v)
	}
	b = bytes.TrimSpace(b)
	if !json.Valid(b) {
		return nil, usagef("send: --data is not valid JSON")
	}
	return json.RawMessage(b), nil
}
