package main

// The web console at /ui/ (README.md, "Console"): server-rendered pages
// from templates embedded in the binary, over the engine's Go API.
//
//   - Sign-in takes the admin token or a tenant token (htk_…), checked by
//     the API's own authenticate. The session lives in this process's
//     memory (bounded, expiring), named by a random id in an HttpOnly,
//     SameSite=Strict cookie (Secure over TLS). It keeps the token and
//     authenticates it again on every request, so a revoked or expired
//     tenant token, or a changed admin token, ends the session at once.
//     Sessions are per node: behind a load balancer, sign in on each node
//     or keep clients on one.
//   - Every POST carries the session's CSRF token in a hidden field and is
//     refused 403 without it; the sign-in form carries one tied to a
//     short-lived cookie instead. The API's cross-origin check (ServeHTTP)
//     runs first as well.
//   - Without an admin token (a loopback-only server) the console needs no
//     sign-in, as the API needs no token: a session is opened as the admin
//     on the first visit. Signing in with a tenant token still gives the
//     tenant view.
//   - A tenant session sees only its tenant: its messages and endpoints;
//     another tenant's message id is 404, and the overview and cluster show
//     nothing of the cluster.
//   - Pages send a strict Content-Security-Policy: nothing is loaded from
//     another origin, and the only script is the console's own (the
//     overview's live chart, which the page does without).

import (
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"sync"
	"time"
)

//go:embed console/templates/*.html console/static/console.css console/static/console.js
var consoleFiles embed.FS

// Console limits.
const (
	sessionTTL       = 12 * time.Hour
	maxSessions      = 10000
	signInTTL        = 10 * time.Minute
	maxConsoleForm   = 64 << 10
	sessionCookie    = "herald_session"
	signInCookie     = "herald_signin"
	consoleCookiePth = "/ui/"
)

// consoleCSP allows only this origin's styles, script, fetches and forms.
const consoleCSP = "default-src 'self'; object-src 'none'; base-uri 'none'; " +
	"form-action 'self'; frame-ancestors 'none'"

// console serves /ui/.
type console struct {
	api      *api
	mux      *http.ServeMux
	pages    map[string]*template.Template
	sessions *sessionStore
}

// newConsole returns the console handler over the API's engine and
// authentication.
func newConsole(a *api) http.Handler {
	c := &console{api: a, mux: http.NewServeMux(), pages: parsePages(), sessions: &sessionStore{m: map[string]*session{}}}
	for _, name := range []string{"console.css", "console.js"} {
		c.mux.HandleFunc("GET /ui/static/"+name, func(w http.ResponseWriter, r *http.Request) {
			http.ServeFileFS(w, r, consoleFiles, "console/static/"+name)
		})
	}
	c.mux.HandleFunc("GET /ui/sign-in", c.signInPage)
	c.mux.HandleFunc("POST /ui/sign-in", c.signIn)
	c.mux.HandleFunc("POST /ui/sign-out", c.signedIn(c.signOut))
	c.mux.HandleFunc("GET /ui/{$}", c.signedIn(c.overview))
	c.mux.HandleFunc("GET /ui/messages", c.signedIn(c.messages))
	c.mux.HandleFunc("GET /ui/messages/{id}", c.signedIn(c.message))
	c.mux.HandleFunc("POST /ui/messages/{id}/retry", c.signedIn(c.retry))
	c.mux.HandleFunc("GET /ui/endpoints", c.signedIn(c.endpoints))
	c.mux.HandleFunc("POST /ui/endpoints/{id}/{action}", c.signedIn(c.endpointAction))
	c.mux.HandleFunc("GET /ui/cluster", c.signedIn(c.cluster))
	c.mux.HandleFunc("GET /ui/rates", c.signedIn(c.rates))
	return c
}

// parsePages parses each page with the layout. The templates are embedded
// and checked by the tests, so a parse error is a build mistake.
func parsePages() map[string]*template.Template {
	funcs := template.FuncMap{"time": formatTime, "json": indentJSON, "percent": percent}
	pages := map[string]*template.Template{}
	for _, name := range []string{"sign-in", "overview", "messages", "message", "endpoints", "secret", "cluster", "error"} {
		pages[name] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(consoleFiles,
			"console/templates/layout.html", "console/templates/"+name+".html"))
	}
	return pages
}

func (c *console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxConsoleForm)
	}
	c.mux.ServeHTTP(w, r)
}

// view is what a signed-in page handler knows of its request.
type view struct {
	sess   *session
	tenant string // the tenant of a tenant session; "" for the admin
}

// admin reports whether the session is the admin's.
func (v view) admin() bool { return v.tenant == "" }

// signedIn wraps a page: it finds the session (opening one as the admin
// without an admin token), authenticates its token again, and checks the
// CSRF token of a POST.
func (c *console) signedIn(h func(http.ResponseWriter, *http.Request, view)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess := c.sessions.get(r)
		if sess == nil && !c.api.auth {
			sess = c.sessions.open(w, r, "")
		}
		if sess == nil {
			if r.Method == http.MethodPost {
				c.fail(w, r, nil, http.StatusForbidden, "not signed in, or the session expired: sign in again")
				return
			}
			http.Redirect(w, r, "/ui/sign-in", http.StatusSeeOther)
			return
		}
		p, status, msg := c.authenticate(r, sess.token)
		if status == http.StatusUnauthorized {
			c.sessions.remove(w, r)
			http.Redirect(w, r, "/ui/sign-in", http.StatusSeeOther)
			return
		}
		if status != 0 { // the token could not be checked (503): who this is is unknown
			c.fail(w, r, nil, status, msg)
			return
		}
		v := view{sess: sess, tenant: p.tenant}
		if r.Method == http.MethodPost && !sameSecret(r.PostFormValue("csrf"), sess.csrf) {
			c.fail(w, r, &v, http.StatusForbidden, "missing or wrong CSRF token: reload the page and try again")
			return
		}
		h(w, r, v)
	}
}

// authenticate checks a token exactly as the API does, through its
// authenticate on a request carrying the token; status is 0 when it is
// accepted, else the API's answer and msg its message.
func (c *console) authenticate(r *http.Request, token string) (p principal, status int, msg string) {
	req := &http.Request{Method: r.Method, URL: r.URL, Header: http.Header{}}
	req = req.WithContext(r.Context())
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := &recorder{header: http.Header{}}
	p, ok := c.api.authenticate(rec, req)
	if ok {
		return p, 0, ""
	}
	return principal{}, rec.code, errorMessage(rec)
}

// errorMessage reads the message of an API error answer.
func errorMessage(rec *recorder) string {
	var body errorBody
	if json.Unmarshal(rec.body.Bytes(), &body) != nil || body.Error.Message == "" {
		return http.StatusText(rec.code)
	}
	return body.Error.Message
}

func (c *console) signInPage(w http.ResponseWriter, r *http.Request) {
	c.renderSignIn(w, r, http.StatusOK, "")
}

// renderSignIn shows the sign-in form with a fresh CSRF token, kept in a
// short-lived cookie that the form's post must match.
func (c *console) renderSignIn(w http.ResponseWriter, r *http.Request, status int, problem string) {
	token := randomToken()
	http.SetCookie(w, &http.Cookie{Name: signInCookie, Value: token, Path: consoleCookiePth, MaxAge: int(signInTTL / time.Second),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	c.render(w, status, "sign-in", pageData{Title: "Sign in", Page: signInForm{CSRF: token, Problem: problem, NoToken: !c.api.auth}})
}

// signInForm is the sign-in page's content.
type signInForm struct {
	CSRF    string
	Problem string
	NoToken bool // the server has no admin token: signing in is optional
}

func (c *console) signIn(w http.ResponseWriter, r *http.Request) {
	ck, err := r.Cookie(signInCookie)
	if err != nil || !sameSecret(r.PostFormValue("csrf"), ck.Value) {
		c.renderSignIn(w, r, http.StatusForbidden, "The sign-in form expired: sign in again.")
		return
	}
	token := r.PostFormValue("token")
	if token == "" {
		c.renderSignIn(w, r, http.StatusUnauthorized, "Give the admin token or a tenant token.")
		return
	}
	if _, status, msg := c.authenticate(r, token); status != 0 {
		if status == http.StatusUnauthorized {
			msg = "That token was refused: give the admin token (--api-token) or a live tenant token (htk_…)."
		}
		c.renderSignIn(w, r, status, msg)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: signInCookie, Path: consoleCookiePth, MaxAge: -1, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	c.sessions.open(w, r, token)
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

func (c *console) signOut(w http.ResponseWriter, r *http.Request, v view) {
	c.sessions.remove(w, r)
	http.Redirect(w, r, "/ui/sign-in", http.StatusSeeOther)
}

// pageData is what every page's layout shows.
type pageData struct {
	Title  string
	CSRF   string
	Tenant string // the tenant of a tenant session
	Admin  bool
	Flash  string
	Auth   bool // sign-out makes sense
	Page   any
}

// show renders a signed-in page.
func (c *console) show(w http.ResponseWriter, v view, status int, name, title string, page any) {
	c.render(w, status, name, pageData{Title: title, CSRF: v.sess.csrf, Tenant: v.tenant, Admin: v.admin(),
		Flash: c.sessions.takeFlash(v.sess), Auth: c.api.auth || !v.admin(), Page: page})
}

func (c *console) render(w http.ResponseWriter, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := c.pages[name].Execute(w, data); err != nil {
		c.api.log.Error("console: render page", "page", name, "error", err)
	}
}

// fail shows an error page; v is nil before the session is known.
func (c *console) fail(w http.ResponseWriter, r *http.Request, v *view, status int, msg string) {
	if v == nil {
		c.render(w, status, "error", pageData{Title: "Error", Page: msg})
		return
	}
	c.show(w, *v, status, "error", "Error", msg)
}

// failErr shows the error the API would answer for err, with its status.
func (c *console) failErr(w http.ResponseWriter, r *http.Request, v view, err error) {
	rec := &recorder{header: http.Header{}}
	c.api.writeErr(rec, r, err)
	c.fail(w, r, &v, rec.code, errorMessage(rec))
}

// back redirects to a console page after an action, with a message for
// that page.
func (c *console) back(w http.ResponseWriter, r *http.Request, v view, to, flash string) {
	c.sessions.setFlash(v.sess, flash)
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// withTenant adds ?tenant= to a console path for the admin.
func withTenant(p string, v view, tenant string) string {
	if !v.admin() || tenant == "" {
		return p
	}
	return p + "?" + url.Values{"tenant": {tenant}}.Encode()
}

// session is one signed-in browser.
type session struct {
	id      string
	token   string // authenticated again on every request; "" without an admin token
	csrf    string
	expires time.Time
	flash   string
}

// sessionStore holds sessions in memory, at most maxSessions.
type sessionStore struct {
	mu sync.Mutex
	m  map[string]*session
}

// get returns the request's live session, or nil.
func (s *sessionStore) get(r *http.Request) *session {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.m[ck.Value]
	if sess == nil || time.Now().After(sess.expires) {
		delete(s.m, ck.Value)
		return nil
	}
	return sess
}

// open starts a session for token and sets its cookie. When the store is
// full, expired sessions go first, then the one closest to expiring.
func (s *sessionStore) open(w http.ResponseWriter, r *http.Request, token string) *session {
	sess := &session{id: randomToken(), token: token, csrf: randomToken(), expires: time.Now().Add(sessionTTL)}
	s.mu.Lock()
	if len(s.m) >= maxSessions {
		s.evict()
	}
	s.m[sess.id] = sess
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sess.id, Path: consoleCookiePth, MaxAge: int(sessionTTL / time.Second),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	return sess
}

// evict makes room for one session; s.mu is held.
func (s *sessionStore) evict() {
	now := time.Now()
	var oldest *session
	for id, sess := range s.m {
		if now.After(sess.expires) {
			delete(s.m, id)
		} else if oldest == nil || sess.expires.Before(oldest.expires) {
			oldest = sess
		}
	}
	if len(s.m) >= maxSessions && oldest != nil {
		delete(s.m, oldest.id)
	}
}

// remove ends the request's session and clears its cookie.
func (s *sessionStore) remove(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(sessionCookie); err == nil {
		s.mu.Lock()
		delete(s.m, ck.Value)
		s.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: consoleCookiePth, MaxAge: -1, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

func (s *sessionStore) setFlash(sess *session, msg string) {
	s.mu.Lock()
	sess.flash = msg
	s.mu.Unlock()
}

// takeFlash returns the session's message for the next page, once.
func (s *sessionStore) takeFlash(sess *session) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := sess.flash
	sess.flash = ""
	return msg
}

// randomToken returns 32 random bytes, base64url.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sameSecret compares a presented secret with the expected one in
// constant time; an empty one never matches.
func sameSecret(got, want string) bool {
	return got != "" && want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
