package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// tokenPrefix starts every token, so that one found in a log or a file is
// easy to recognize.
const tokenPrefix = "cairn-"

// NewToken returns a new random token.
func NewToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("auth: no randomness: %v", err)) // crypto/rand never fails on Linux
	}
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// Hash is what the journal keeps of a token: its SHA-256.
func Hash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// maxTokenBytes bounds a token read from a header or a file.
const maxTokenBytes = 512

// FromHeader returns the bearer token of an authorization header, and
// whether there is one.
func FromHeader(h http.Header) (string, bool) {
	v := h.Get("Authorization")
	if len(v) < 7 || !strings.EqualFold(v[:7], "bearer ") {
		return "", false
	}
	t := strings.TrimSpace(v[7:])
	return t, t != "" && len(t) <= maxTokenBytes
}

// ReadTokenFile reads a token from a file: its first line, trimmed.
func ReadTokenFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	}
	t := strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
	if t == "" || len(t) > maxTokenBytes || strings.ContainsAny(t, " \t") {
		return "", fmt.Errorf("token file %s holds no token (want one line with the token)", path)
	}
	return t, nil
}

// EnsureTokenFile returns the token in path, making a new one and writing
// it there (mode 0600, in a new file) when the file does not exist. created
// says which happened.
func EnsureTokenFile(path string) (token string, created bool, err error) {
	t, err := ReadTokenFile(path)
	if err == nil {
		return t, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", false, err
	}
	t = NewToken()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", false, fmt.Errorf("create the folder of token file %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, fmt.Errorf("create token file: %w", err)
	}
	if _, err := f.WriteString(t + "\n"); err != nil {
		f.Close()
		return "", false, fmt.Errorf("write token file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", false, fmt.Errorf("sync token file %s: %w", path, err)
	}
	return t, true, f.Close()
}

// Initial is a token given at bootstrap (--initial-tokens).
type Initial struct {
	Name  string
	Role  string
	Token string
}

// ParseInitialTokens reads a file of initial tokens: one per line, "NAME
// ROLE TOKEN" separated by blanks; blank lines and lines starting with #
// are skipped.
func ParseInitialTokens(text string) ([]Initial, error) {
	var out []Initial
	seen := map[string]bool{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: want NAME ROLE TOKEN, got %d fields", i+1, len(f))
		}
		if _, err := ParseRole(f[1]); err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		if len(f[2]) < 16 || len(f[2]) > maxTokenBytes {
			return nil, fmt.Errorf("line %d: token of %d characters: want 16 to %d (cairn auth token new prints a good one)", i+1, len(f[2]), maxTokenBytes)
		}
		if seen[f[0]] {
			return nil, fmt.Errorf("line %d: name %q given twice", i+1, f[0])
		}
		seen[f[0]] = true
		out = append(out, Initial{Name: f[0], Role: f[1], Token: f[2]})
	}
	return out, nil
}
