package main

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/cairnhq/cairn/apiserver"
	"github.com/cairnhq/cairn/auth"
	"github.com/cairnhq/cairn/client"
)

// security is how the bench's processes are secured. Every bench runs with
// tokens checked (auth, the default of a real cluster); the journal bench
// can also run its rows insecure and under TLS, to measure what each costs.
type security struct {
	name     string // "auth", "insecure" or "tls" (tokens and TLS)
	insecure bool
	tls      bool
}

var securities = map[string]security{
	"auth":     {name: "auth"},
	"insecure": {name: "insecure", insecure: true},
	"tls":      {name: "tls", tls: true},
}

// sec is the security the next cluster starts with; setUpSecurity fills in
// the rest for it.
var (
	sec                     = securities["auth"]
	adminToken, workerToken string
	secDir                  string
	tlsFiles                apiserver.TLSFiles
	clientTLS               *tls.Config
)

// setUpSecurity writes the tokens (and, for TLS, a CA and a certificate)
// the cluster started in root uses.
func setUpSecurity(root string) error {
	secDir = filepath.Join(root, "security")
	if err := os.MkdirAll(secDir, 0o700); err != nil {
		return err
	}
	adminToken, workerToken = auth.NewToken(), auth.NewToken()
	for name, text := range map[string]string{
		"admin.token":    adminToken + "\n",
		"worker.token":   workerToken + "\n",
		"initial-tokens": fmt.Sprintf("admin admin %s\nworkers worker %s\n", adminToken, workerToken),
	} {
		if err := os.WriteFile(filepath.Join(secDir, name), []byte(text), 0o600); err != nil {
			return err
		}
	}
	tlsFiles, clientTLS = apiserver.TLSFiles{}, nil
	if sec.tls {
		var err error
		if tlsFiles, err = apiserver.DevTLS(filepath.Join(secDir, "tls"), nil); err != nil {
			return err
		}
		if clientTLS, err = tlsFiles.Client(); err != nil {
			return err
		}
	}
	return nil
}

// masterSecurityArgs are the flags that secure a master as sec says.
func masterSecurityArgs() []string {
	if sec.insecure {
		return []string{"--insecure"}
	}
	args := []string{"--initial-tokens", filepath.Join(secDir, "initial-tokens"), "--token-file", filepath.Join(secDir, "admin.token")}
	return append(args, tlsArgs()...)
}

// workerSecurityArgs are the flags that secure a worker as sec says.
func workerSecurityArgs() []string {
	if sec.insecure {
		return []string{"--insecure"}
	}
	return append([]string{"--token-file", filepath.Join(secDir, "worker.token")}, tlsArgs()...)
}

func tlsArgs() []string {
	if !sec.tls {
		return nil
	}
	return []string{"--tls-ca", tlsFiles.CA, "--tls-cert", tlsFiles.Cert, "--tls-key", tlsFiles.Key}
}

// benchClient is client.New with the admin token and TLS the cluster needs.
func benchClient(addrs []string, opts ...client.Option) *client.Client {
	return client.New(addrs, append([]client.Option{client.WithToken(adminToken), client.WithTLS(clientTLS)}, opts...)...)
}

// benchHTTP is an HTTP client for a process's plain routes (/metrics, the
// profiler, workers' bulk endpoints) with the admin token and TLS.
func benchHTTP() *http.Client {
	return &http.Client{Transport: auth.Transport(adminToken, apiserver.WithTLS(apiserver.HTTP1Transport(), clientTLS))}
}

// baseURL is a process's URL at addr.
func baseURL(addr string) string { return tlsFiles.Scheme() + "://" + addr }
