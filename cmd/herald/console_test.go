package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/engine"
)

// browser is a cookie-keeping client of the console that does not follow
// redirects.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: base, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page is one console answer.
type page struct {
	status int
	header http.Header
	body   string
}

func (b *browser) get(path string) page {
	b.t.Helper()
	return b.do("GET", path, nil)
}

// post sends a form, as a same-origin page would.
func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	return b.do("POST", path, form)
}

func (b *browser) do(method, path string, form url.Values) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	text, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return page{status: res.StatusCode, header: res.Header, body: string(text)}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token of a page's forms.
func (p page) csrf(t *testing.T) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no CSRF token in the page:\n%s", p.body)
	}
	return m[1]
}

func (p page) want(t *testing.T, status int, location string) page {
	t.Helper()
	if p.status != status || p.header.Get("Location") != location {
		t.Fatalf("answer %d (Location %q), want %d (Location %q):\n%s", p.status, p.header.Get("Location"), status, location, p.body)
	}
	return p
}

// signIn signs in with token and checks the session cookie's attributes.
func (b *browser) signIn(token string) {
	b.t.Helper()
	form := b.get("/ui/sign-in").want(b.t, http.StatusOK, "")
	res := b.post("/ui/sign-in", url.Values{"csrf": {form.csrf(b.t)}, "token": {token}}).want(b.t, http.StatusSeeOther, "/ui/")
	var ck string
	for _, c := range res.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, sessionCookie+"=") {
			ck = c
		}
	}
	for _, attr := range []string{sessionCookie + "=", "Path=/ui/", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(ck, attr) {
			b.t.Errorf("session cookie %q lacks %s", ck, attr)
		}
	}
}

// TestConsoleSecurity checks sign-in, the headers, CSRF refusals and the
// tenant view's bounds over HTTP (the browser test drives the same in
// Chromium).
func TestConsoleSecurity(t *testing.T) {
	s := startAPI(t, apiOptions{token: "console-admin"})
	ctx := context.Background()
	hook := newHook(t)
	if _, err := s.e.CreateEndpoint(ctx, engine.EndpointInput{URL: hook.URL}); err != nil {
		t.Fatal(err)
	}
	msg, _, err := s.e.Enqueue(ctx, engine.MessageInput{Type: "order.created", Data: json.RawMessage(`{"n":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.e.CreateTenantToken(ctx, "acme", time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t, s.URL)
	first := b.get("/ui/").want(t, http.StatusSeeOther, "/ui/sign-in")
	if csp := first.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	form := b.get("/ui/sign-in").want(t, http.StatusOK, "")
	if n := strings.Count(form.body, `<input type="password" name="token"`); n != 1 {
		t.Errorf("the sign-in page has %d token inputs", n)
	}
	// Each answer to a refused sign-in carries a new form.
	form = b.post("/ui/sign-in", url.Values{"token": {"console-admin"}}).want(t, http.StatusForbidden, "")
	form = b.post("/ui/sign-in", url.Values{"csrf": {form.csrf(t)}, "token": {"wrong"}}).want(t, http.StatusUnauthorized, "")
	b.post("/ui/sign-in", url.Values{"csrf": {form.csrf(t)}, "token": {"htk_unknown"}}).want(t, http.StatusUnauthorized, "")

	b.signIn("console-admin")
	msgPage := b.get("/ui/messages/"+msg.ID).want(t, http.StatusOK, "")
	csrf := msgPage.csrf(t)
	b.post("/ui/messages/"+msg.ID+"/retry", url.Values{}).want(t, http.StatusForbidden, "")
	b.post("/ui/messages/"+msg.ID+"/retry", url.Values{"csrf": {"forged"}}).want(t, http.StatusForbidden, "")
	b.post("/ui/messages/"+msg.ID+"/retry", url.Values{"csrf": {csrf}}).want(t, http.StatusSeeOther, "/ui/messages/"+msg.ID+"?tenant=default")
	b.get("/ui/messages?after=bogus").want(t, http.StatusBadRequest, "")
	b.get("/ui/cluster").want(t, http.StatusOK, "")
	var rates rateSample
	if err := json.Unmarshal([]byte(b.get("/ui/rates").want(t, http.StatusOK, "").body), &rates); err != nil || rates.At == 0 {
		t.Errorf("/ui/rates: %+v, %v", rates, err)
	}

	// A tenant sees its own tenant only, and its session ends with its
	// token.
	tb := newBrowser(t, s.URL)
	tb.signIn(tok.Token)
	tb.get("/ui/messages/"+msg.ID).want(t, http.StatusNotFound, "")
	tb.get("/ui/messages/"+msg.ID+"?tenant=default").want(t, http.StatusNotFound, "")
	tb.get("/ui/cluster").want(t, http.StatusForbidden, "")
	tb.get("/ui/rates").want(t, http.StatusForbidden, "")
	if list := tb.get("/ui/messages?tenant=default").want(t, http.StatusOK, ""); strings.Contains(list.body, msg.ID) {
		t.Error("a tenant's list shows a message of the default tenant")
	}
	if _, err := s.e.RevokeTenantTokens(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	tb.get("/ui/messages").want(t, http.StatusSeeOther, "/ui/sign-in")

	// Sign-out ends the admin's session.
	b.post("/ui/sign-out", url.Values{"csrf": {csrf}}).want(t, http.StatusSeeOther, "/ui/sign-in")
	b.get("/ui/messages").want(t, http.StatusSeeOther, "/ui/sign-in")
}

// TestConsoleWithoutToken: a loopback server without an admin token opens
// the console as the admin, as its API needs no token, and still checks
// CSRF.
func TestConsoleWithoutToken(t *testing.T) {
	s := startAPI(t, apiOptions{})
	ep, err := s.e.CreateEndpoint(context.Background(), engine.EndpointInput{URL: "http://127.0.0.1:9/"})
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, s.URL)
	list := b.get("/ui/endpoints").want(t, http.StatusOK, "")
	b.post("/ui/endpoints/"+ep.ID+"/disable", url.Values{}).want(t, http.StatusForbidden, "")
	b.post("/ui/endpoints/"+ep.ID+"/disable", url.Values{"csrf": {list.csrf(t)}}).want(t, http.StatusSeeOther, "/ui/endpoints?tenant=default")
	got, err := s.e.Endpoint(context.Background(), "", ep.ID)
	if err != nil || got.State != engine.StateDisabled {
		t.Fatalf("after disabling: %v, %v", got, err)
	}
	rotated := b.post("/ui/endpoints/"+ep.ID+"/rotate", url.Values{"csrf": {list.csrf(t)}}).want(t, http.StatusOK, "")
	if !strings.Contains(rotated.body, `id="secret"`) || !strings.Contains(rotated.body, "whsec_") {
		t.Errorf("the rotated secret is not shown:\n%s", rotated.body)
	}
}

// TestConsoleSessionsBounded: a full store drops the session closest to
// expiring.
func TestConsoleSessionsBounded(t *testing.T) {
	s := &sessionStore{m: map[string]*session{}}
	r := httptest.NewRequest("GET", "/ui/", nil)
	first := s.open(httptest.NewRecorder(), r, "")
	for range maxSessions {
		s.open(httptest.NewRecorder(), r, "")
	}
	if len(s.m) != maxSessions {
		t.Errorf("%d sessions, want at most %d", len(s.m), maxSessions)
	}
	if s.m[first.id] != nil {
		t.Error("the oldest session was not the one dropped")
	}
}

// TestConsoleEndpointRecent: the endpoints page shows each endpoint's
// recent success rate and last error, as this node saw the attempts.
func TestConsoleEndpointRecent(t *testing.T) {
	s := startAPI(t, apiOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	hook := newHook(t)
	ep, err := s.e.CreateEndpoint(ctx, engine.EndpointInput{URL: hook.URL})
	if err != nil {
		t.Fatal(err)
	}
	idle, err := s.e.CreateEndpoint(ctx, engine.EndpointInput{URL: hook.URL, EventTypes: []string{"never.sent"}})
	if err != nil {
		t.Fatal(err)
	}
	deliver := func(status int) {
		t.Helper()
		hook.setStatus(status)
		msg, _, err := s.e.Enqueue(ctx, engine.MessageInput{Type: "order.created", Data: json.RawMessage(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.e.WaitDelivered(ctx, "", msg.ID); err != nil {
			t.Fatal(err)
		}
	}
	deliver(http.StatusServiceUnavailable) // two attempts fail
	deliver(http.StatusNoContent)

	list := newBrowser(t, s.URL).get("/ui/endpoints").want(t, http.StatusOK, "")
	row := regexp.MustCompile(`(?s)<tr data-id="` + ep.ID + `">.*?</tr>`).FindString(list.body)
	for _, want := range []string{`<span class="rate">33%</span> of 3 succeeded`, "HTTP 503"} {
		if !strings.Contains(row, want) {
			t.Errorf("the endpoint's row lacks %q:\n%s", want, row)
		}
	}
	idleRow := regexp.MustCompile(`(?s)<tr data-id="` + idle.ID + `">.*?</tr>`).FindString(list.body)
	if !strings.Contains(idleRow, "none seen") {
		t.Errorf("the idle endpoint's row:\n%s", idleRow)
	}
}

// TestConsoleMessagesByType: the messages page filters by event type, with
// status, and its next page keeps the filter.
func TestConsoleMessagesByType(t *testing.T) {
	s := startAPI(t, apiOptions{})
	ctx := context.Background()
	enqueue := func(typ string) string {
		t.Helper()
		msg, _, err := s.e.Enqueue(ctx, engine.MessageInput{Type: typ, Data: json.RawMessage(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		return msg.ID
	}
	paid := enqueue("order.paid")
	for range engine.DefaultListLimit + 1 {
		enqueue("order.created")
	}
	b := newBrowser(t, s.URL)
	list := b.get("/ui/messages?type=order.paid&status=succeeded").want(t, http.StatusOK, "")
	if got := strings.Count(list.body, `<tr data-id=`); got != 1 || !strings.Contains(list.body, paid) || !strings.Contains(list.body, `name="type" value="order.paid"`) {
		t.Errorf("order.paid lists %d messages:\n%s", got, list.body)
	}
	created := b.get("/ui/messages?type=order.created").want(t, http.StatusOK, "")
	if strings.Contains(created.body, paid) || !strings.Contains(created.body, "type=order.created") {
		t.Errorf("the order.created page shows order.paid or loses its filter in the next link:\n%s", created.body)
	}
	b.get("/ui/messages?type=no%20spaces").want(t, http.StatusBadRequest, "")
}
