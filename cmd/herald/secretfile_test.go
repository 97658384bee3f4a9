package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	const secret = "Tok-3f9a7c"
	for _, c := range []struct {
		name    string
		content string
		mode    os.FileMode
		want    string // the token, or
		wantErr string // a part of the error
	}{
		{"plain", secret, 0o600, secret, ""},
		{"trailing newline", secret + "\n", 0o600, secret, ""},
		{"CRLF and spaces", "  " + secret + " \r\n", 0o400, secret, ""},
		{"empty", "", 0o600, "", "the file is empty"},
		{"only a newline", "\n", 0o600, "", "the file is empty"},
		{"two lines", secret + "\nmore\n", 0o600, "", "on one line"},
		{"control character", "Tok\x00-3f9a7c", 0o600, "", "control characters"},
		{"group-readable", secret, 0o640, "", "permissions 0640 are too open"},
		{"world-readable", secret, 0o644, "", "permissions 0644 are too open"},
		{"world-writable", secret, 0o602, "", "others may write it"},
		{"too large", strings.Repeat("a", maxSecretFileBytes+1), 0o600, "", "larger than"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_"))
			if err := os.WriteFile(path, []byte(c.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, c.mode); err != nil {
				t.Fatal(err)
			}
			got, err := readSecretFile("--api-token-file", path)
			if c.wantErr == "" {
				if err != nil || got != c.want {
					t.Errorf("= %q, %v; want %q", got, err, c.want)
				}
				return
			}
			if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), c.wantErr) ||
				!strings.HasPrefix(err.Error(), "--api-token-file "+path+": ") {
				t.Fatalf("error = %v, want a usage error naming the file and mentioning %q", err, c.wantErr)
			}
			if strings.Contains(err.Error(), "3f9a7c") || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q shows the token or is not one line", err)
			}
		})
	}
	if _, err := readSecretFile("--api-token-file", filepath.Join(dir, "missing")); err == nil ||
		err.Error() != "--api-token-file "+filepath.Join(dir, "missing")+": no such file or directory" {
		t.Errorf("missing file: %v", err)
	}
	if _, err := readSecretFile("--api-token-file", dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	// A pipe, as from --api-token-file <(pass show herald).
	if _, err := os.Stat("/dev/fd/0"); err == nil {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		go func() { w.WriteString(secret + "\n"); w.Close() }()
		if got, err := readSecretFile("--api-token-file", fmt.Sprintf("/dev/fd/%d", r.Fd())); err != nil || got != secret {
			t.Errorf("pipe: %q, %v", got, err)
		}
	}
}

func TestResolveAPIToken(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tok")
	writeFile(t, file, []byte("from-file\n"))
	type in struct {
		token, file       string
		tokenSet, fileSet bool
		env               map[string]string
	}
	for _, c := range []struct {
		name    string
		in      in
		want    string
		wantErr string
	}{
		{"nothing", in{}, "", ""},
		{"flag", in{token: "f", tokenSet: true}, "f", ""},
		{"file flag", in{file: file, fileSet: true}, "from-file", ""},
		{"env", in{env: map[string]string{"HERALD_API_TOKEN": "e"}}, "e", ""},
		{"file env", in{env: map[string]string{"HERALD_API_TOKEN_FILE": file}}, "from-file", ""},
		{"flag beats file env", in{token: "f", tokenSet: true, env: map[string]string{"HERALD_API_TOKEN_FILE": file}}, "f", ""},
		{"file flag beats env", in{file: file, fileSet: true, env: map[string]string{"HERALD_API_TOKEN": "e"}}, "from-file", ""},
		{"both flags", in{token: "f", tokenSet: true, file: file, fileSet: true}, "", "give --api-token or --api-token-file, not both"},
		{"both env", in{env: map[string]string{"HERALD_API_TOKEN": "e", "HERALD_API_TOKEN_FILE": file}}, "", "HERALD_API_TOKEN and HERALD_API_TOKEN_FILE are both set"},
		{"empty file flag", in{fileSet: true}, "", "--api-token-file must not be empty"},
		{"missing env file", in{env: map[string]string{"HERALD_API_TOKEN_FILE": file + ".x"}}, "", "HERALD_API_TOKEN_FILE " + file + ".x: no such file"},
	} {
		lookup := func(k string) (string, bool) { v, ok := c.in.env[k]; return v, ok }
		got, err := resolveAPIToken(c.in.token, c.in.file, c.in.tokenSet, c.in.fileSet, lookup)
		switch {
		case c.wantErr == "" && (err != nil || got != c.want):
			t.Errorf("%s: %q, %v; want %q", c.name, got, err, c.want)
		case c.wantErr != "" && (err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%s: error %v, want a usage error with %q", c.name, err, c.wantErr)
		}
	}
}

func TestServeTokenFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	writeFile(t, file, []byte("serve-file-token\n"))
	none := func(string) (string, bool) { return "", false }
	var stderr bytes.Buffer
	// A token from a file satisfies the token rule on a public address.
	cfg, err := parseServeFlags([]string{"--api-token-file", file, "--http-addr", "0.0.0.0:8080"}, none, &stderr)
	if err != nil || cfg.apiToken != "serve-file-token" {
		t.Fatalf("--api-token-file: %+v, %v", cfg, err)
	}
	env := func(k string) (string, bool) {
		return map[string]string{"HERALD_API_TOKEN_FILE": file}[k], k == "HERALD_API_TOKEN_FILE"
	}
	if cfg, err := parseServeFlags(nil, env, &stderr); err != nil || cfg.apiToken != "serve-file-token" {
		t.Errorf("HERALD_API_TOKEN_FILE: %v", err)
	}
	if _, err := parseServeFlags([]string{"--api-token", "x", "--api-token-file", file}, none, &stderr); exitCode(err) != 2 {
		t.Errorf("both: %v, want a usage error", err)
	}

	// Through the command: one line, exit 2, nothing opened.
	t.Setenv("HERALD_API_TOKEN", "")
	t.Setenv("HERALD_API_TOKEN_FILE", "")
	loose := filepath.Join(t.TempDir(), "loose")
	writeFile(t, loose, []byte("serve-file-token\n"))
	os.Chmod(loose, 0o644)
	empty := filepath.Join(t.TempDir(), "empty")
	writeFile(t, empty, nil)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--api-token-file", loose}, "--api-token-file " + loose + ": permissions 0644 are too open"},
		{[]string{"--api-token-file", empty}, "--api-token-file " + empty + ": the file is empty"},
		{[]string{"--api-token-file", file, "--api-token", "x"}, "not both"},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		_, stderr, code := cli(t, append([]string{"serve", "--data-dir", dir, "--http-addr", "127.0.0.1:0", "--raft-addr", "127.0.0.1:0"}, c.args...)...)
		if code != 2 {
			t.Errorf("%q: exit %d, want 2", c.args, code)
		}
		oneLine(t, stderr, c.want)
		if strings.Contains(stderr, "serve-file-token") {
			t.Errorf("%q: stderr shows the token", c.args)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%q: the data dir was created", c.args)
		}
	}
}

func TestClientTokenFileAndCACert(t *testing.T) {
	for _, k := range []string{"HERALD_API_TOKEN", "HERALD_API_TOKEN_FILE", "HERALD_CA_CERT", "HERALD_SERVER"} {
		t.Setenv(k, "")
	}
	f := newFakeAPI(t, 200, `{"data":[]}`)
	file := filepath.Join(t.TempDir(), "token")
	writeFile(t, file, []byte("client-file-token\n"))
	auth := func(args ...string) string {
		t.Helper()
		_, stderr, code := cli(t, append([]string{"endpoints", "list", "--server", f.URL}, args...)...)
		if code != 0 {
			t.Fatalf("%q: exit %d: %s", args, code, stderr)
		}
		r, _ := f.last(t)
		return r.Header.Get("Authorization")
	}
	if got := auth("--api-token-file", file); got != "Bearer client-file-token" {
		t.Errorf("--api-token-file: Authorization %q", got)
	}
	t.Setenv("HERALD_API_TOKEN_FILE", file)
	if got := auth(); got != "Bearer client-file-token" {
		t.Errorf("HERALD_API_TOKEN_FILE: Authorization %q", got)
	}
	if got := auth("--api-token", "flag-token"); got != "Bearer flag-token" {
		t.Errorf("--api-token with HERALD_API_TOKEN_FILE: Authorization %q, want the flag's", got)
	}
	t.Setenv("HERALD_API_TOKEN", "env-token")
	_, stderr, code := cli(t, "endpoints", "list", "--server", f.URL)
	if code != 2 {
		t.Errorf("both variables: exit %d", code)
	}
	oneLine(t, stderr, "HERALD_API_TOKEN and HERALD_API_TOKEN_FILE are both set")
	t.Setenv("HERALD_API_TOKEN_FILE", "")
	if got := auth(); got != "Bearer env-token" {
		t.Errorf("HERALD_API_TOKEN: Authorization %q", got)
	}
	// -h does not print the token from the environment as a default.
	if _, stderr, _ := cli(t, "send", "-h"); strings.Contains(stderr, "env-token") || !strings.Contains(stderr, "api-token-file file") {
		t.Errorf("send -h shows the token or lacks --api-token-file:\n%s", stderr)
	}
	t.Setenv("HERALD_API_TOKEN", "")
	_, stderr, code = cli(t, "endpoints", "list", "--server", f.URL, "--api-token", "x", "--api-token-file", file)
	if code != 2 {
		t.Errorf("both flags: exit %d", code)
	}
	oneLine(t, stderr, "give --api-token or --api-token-file, not both")

	// Bad --ca-cert files are one line each, also for an http:// server.
	ca := newHTTPSTestCA(t)
	_, key := ca.issue(t, 3)
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	writeFile(t, keyFile, key)
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	writeFile(t, garbage, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, c := range []struct{ file, want string }{
		{missing, "--ca-cert " + missing + ": no such file or directory"},
		{file, "--ca-cert " + file + ": no PEM certificate found"},
		{keyFile, "it holds a private key"},
		{garbage, "--ca-cert " + garbage + ": certificate 1: x509: "},
	} {
		_, stderr, code := cli(t, "endpoints", "list", "--server", f.URL, "--ca-cert", c.file)
		if code != 2 {
			t.Errorf("%s: exit %d, want 2", c.file, code)
		}
		oneLine(t, stderr, c.want)
	}
	t.Setenv("HERALD_CA_CERT", missing)
	_, stderr, code = cli(t, "endpoints", "list", "--server", f.URL)
	if code != 2 {
		t.Errorf("HERALD_CA_CERT: exit %d", code)
	}
	oneLine(t, stderr, "--ca-cert "+missing)
	// A good bundle is accepted for an http:// server too.
	t.Setenv("HERALD_CA_CERT", ca.caFile)
	if _, stderr, code := cli(t, "endpoints", "list", "--server", f.URL); code != 0 {
		t.Errorf("good CA with http://: exit %d %s", code, stderr)
	}
}

// TestClientCACertReplacesSystemRoots: --ca-cert is the whole trust store,
// like curl --cacert: a server the bundle does not cover is refused.
func TestClientCACertReplacesSystemRoots(t *testing.T) {
	t.Setenv("HERALD_API_TOKEN", "")
	t.Setenv("HERALD_API_TOKEN_FILE", "")
	ca := newHTTPSTestCA(t)
	var cf clientFlags
	cf.server, cf.caCert = "https://127.0.0.1:1", ca.caFile
	c, err := cf.client()
	if err != nil {
		t.Fatal(err)
	}
	tr, ok := c.http.Transport.(*http.Transport)
	if !ok || tr.TLSClientConfig == nil || !tr.TLSClientConfig.RootCAs.Equal(ca.pool()) || tr.TLSClientConfig.MinVersion < 0x0303 {
		t.Fatalf("transport = %#v, want RootCAs = the bundle only, TLS 1.2 or later", c.http.Transport)
	}
	if tr.Proxy == nil {
		t.Errorf("the transport lost the environment's proxy setting")
	}
}
