package main

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/heraldhq/herald/cluster"
)

// Environment variables of the API token, read by serve and by the client
// commands alike.
const (
	envAPIToken     = "HERALD_API_TOKEN"
	envAPITokenFile = "HERALD_API_TOKEN_FILE"
)

// maxSecretFileBytes bounds a token file: a token is one short line.
const maxSecretFileBytes = 64 << 10

// resolveAPIToken picks the API token from --api-token, --api-token-file
// and their environment variables. A flag beats every environment
// variable: with either flag given, neither HERALD_API_TOKEN nor
// HERALD_API_TOKEN_FILE is read. Both flags, or (without flags) both
// variables, are a usage error, as is a token file that readSecretFile
// refuses.
func resolveAPIToken(token, file string, tokenSet, fileSet bool, lookupEnv func(string) (string, bool)) (string, error) {
	fileName := "--api-token-file"
	switch {
	case tokenSet && fileSet:
		return "", usagef("give --api-token or --api-token-file, not both")
	case tokenSet:
		return token, nil
	case !fileSet:
		token, _ = lookupEnv(envAPIToken)
		file, _ = lookupEnv(envAPITokenFile)
		if token != "" && file != "" {
			return "", usagef("%s and %s are both set; set only one", envAPIToken, envAPITokenFile)
		}
		if file == "" {
			return token, nil
		}
		fileName = envAPITokenFile
	}
	if file == "" {
		return "", usagef("%s must not be empty", fileName)
	}
	return readSecretFile(fileName, file)
}

// readSecretFile reads a token from path, named in errors as name (the flag
// or variable that gave it), with readSecretBytes. Surrounding white space,
// the trailing newline included, is trimmed; what remains must be one
// non-empty line of printable characters. The token never appears in an
// error.
func readSecretFile(name, path string) (string, error) {
	b, err := readSecretBytes(name, path)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	switch {
	case tok == "":
		return "", usagef("%s %s: the file is empty", name, path)
	case strings.ContainsAny(tok, "\r\n"):
		return "", usagef("%s %s: the file must hold the token on one line", name, path)
	case strings.IndexFunc(tok, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		return "", usagef("%s %s: the token contains control characters", name, path)
	}
	return tok, nil
}

// readSecretBytes reads a secret file, a regular file or a pipe, named in
// errors as name. Like ssh with private keys, a file owned by this user
// that group or others may access is refused (chmod 600 it); a file owned
// by someone else, like a root-owned secret mounted into a container, is
// accepted unless others may write it.
func readSecretBytes(name, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usagef("%s %s: %v", name, path, pathErr(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, usagef("%s %s: %v", name, path, pathErr(err))
	}
	// A pipe is fine too: --api-token-file <(pass show herald), or
	// /dev/stdin with the token piped in.
	if !fi.Mode().IsRegular() && fi.Mode().Type() != fs.ModeNamedPipe {
		return nil, usagef("%s %s: not a regular file", name, path)
	}
	if err := checkSecretPerm(fi); err != nil {
		return nil, usagef("%s %s: %v (chmod 600 %s)", name, path, err, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFileBytes+1))
	if err != nil {
		return nil, usagef("%s %s: %v", name, path, pathErr(err))
	}
	if len(b) > maxSecretFileBytes {
		return nil, usagef("%s %s: larger than %d bytes; it should hold only the secret", name, path, maxSecretFileBytes)
	}
	return b, nil
}

// sealKeySize is the length of a seal key: AES-256.
const sealKeySize = 32

// readSealKey reads a seal key file: the 32 key bytes themselves, or their
// standard base64 or hex on one line (herald keygen seal prints base64).
func readSealKey(name, path string) ([]byte, error) {
	b, err := readSecretBytes(name, path)
	if err != nil {
		return nil, err
	}
	if len(b) == sealKeySize {
		return b, nil
	}
	text := strings.TrimSpace(string(b))
	if key, err := base64.StdEncoding.DecodeString(text); err == nil && len(key) == sealKeySize {
		return key, nil
	}
	if key, err := hex.DecodeString(text); err == nil && len(key) == sealKeySize {
		return key, nil
	}
	return nil, usagef("%s %s: not a seal key: want %d bytes, or their base64 or hex (herald keygen seal makes one)", name, path, sealKeySize)
}

// checkSecretPerm applies readSecretFile's permission rule.
func checkSecretPerm(fi fs.FileInfo) error {
	perm := fi.Mode().Perm()
	if !permBitsMeaningful {
		return nil
	}
	if perm&0o002 != 0 {
		return fmt.Errorf("permissions %04o are too open: others may write it", perm)
	}
	if owned, known := ownedByCurrentUser(fi); (owned || !known) && perm&0o077 != 0 {
		return fmt.Errorf("permissions %04o are too open: group or others may access it", perm)
	}
	return nil
}

// loadCABundle reads a PEM file of CA certificates, named in errors as name.
// Blocks other than CERTIFICATE are skipped; a certificate that does not
// parse, or a file without any, is an error.
func loadCABundle(name, path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("%s %s: %v", name, path, pathErr(err))
	}
	certs, err := cluster.ParseCertificates(b)
	if err != nil {
		if bytes.Contains(b, []byte("PRIVATE KEY")) && !bytes.Contains(b, []byte("CERTIFICATE")) {
			return nil, usagef("%s %s: no PEM certificate found (it holds a private key: give the CA's certificate)", name, path)
		}
		return nil, usagef("%s %s: %v", name, path, err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// pathErr reduces an *fs.PathError to its cause ("no such file or
// directory"), since the message names the path already.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
