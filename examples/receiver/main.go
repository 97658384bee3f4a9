// Command receiver is a minimal webhook receiver for trying Herald out: it
// prints every request it gets and, given the endpoint's secret, checks its
// Standard Webhooks signature with Herald's signer package.
//
//	go run ./examples/receiver --addr 127.0.0.1:9000 --secret whsec_...
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"

	"github.com/heraldhq/herald/signer"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	secret := flag.String("secret", "", "the endpoint's whsec_ secret; empty skips verification")
	flag.Parse()

	var v *signer.Verifier
	if *secret != "" {
		var err error
		if v, err = signer.NewVerifier(signer.VerifierConfig{Secrets: []string{*secret}}); err != nil {
			log.Fatal(err)
		}
	}
	http.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		verdict := "not checked (no --secret)"
		if v != nil {
			verdict = "valid"
			if err := v.Verify(r.Header, body); err != nil {
				verdict = "INVALID: " + err.Error()
				w.WriteHeader(http.StatusUnauthorized)
			}
		}
		fmt.Printf("webhook-id: %s\nwebhook-timestamp: %s\nsignature: %s\n%s\n\n",
			r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), verdict, body)
	})
	log.Printf("receiving webhooks on http://%s/", *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}
