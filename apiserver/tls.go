package apiserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// TLSFiles names the PEM files of a process's TLS setup. The same files
// serve a process's API and, on masters, the raft port; a process uses its
// certificate as a client certificate too, for mutual TLS between cairn
// processes.
type TLSFiles struct {
	// Cert and Key are this process's certificate (chain) and key. Servers
	// need them; clients present them when servers require client
	// certificates.
	Cert, Key string
	// CA is the certificate of the authority that signs the cluster's
	// certificates: clients trust servers it signed, and servers that
	// require client certificates accept only ones it signed.
	CA string
	// ClientAuth makes servers require a client certificate the CA signed
	// (mutual TLS).
	ClientAuth bool
}

// Enabled reports whether any TLS file is given.
func (f TLSFiles) Enabled() bool { return f.Cert != "" || f.Key != "" || f.CA != "" }

// Scheme is "https" with TLS, else "http".
func (f TLSFiles) Scheme() string {
	if f.Enabled() {
		return "https"
	}
	return "http"
}

func (f TLSFiles) pool() (*x509.CertPool, error) {
	if f.CA == "" {
		return nil, nil // the system's roots
	}
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, fmt.Errorf("--tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--tls-ca %s holds no PEM certificate", f.CA)
	}
	return pool, nil
}

func (f TLSFiles) keyPair() ([]tls.Certificate, error) {
	if f.Cert == "" && f.Key == "" {
		return nil, nil
	}
	if f.Cert == "" || f.Key == "" {
		return nil, errors.New("give both --tls-cert and --tls-key")
	}
	c, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("load --tls-cert %s and --tls-key %s: %w", f.Cert, f.Key, err)
	}
	return []tls.Certificate{c}, nil
}

// Server is the TLS configuration of a server: its certificate, and with
// ClientAuth the CA that client certificates must chain to.
func (f TLSFiles) Server() (*tls.Config, error) {
	certs, err := f.keyPair()
	if err != nil {
		return nil, err
	}
	if len(certs) == 0 {
		return nil, errors.New("a TLS server needs --tls-cert and --tls-key")
	}
	cfg := &tls.Config{Certificates: certs, MinVersion: tls.VersionTLS12}
	if f.ClientAuth {
		if f.CA == "" {
			return nil, errors.New("--tls-client-auth needs --tls-ca: the CA client certificates must chain to")
		}
		if cfg.ClientCAs, err = f.pool(); err != nil {
			return nil, err
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// Client is the TLS configuration of a client: the CA it trusts (the
// system's roots when none is given) and its own certificate, if any.
func (f TLSFiles) Client() (*tls.Config, error) {
	certs, err := f.keyPair()
	if err != nil {
		return nil, err
	}
	pool, err := f.pool()
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: certs, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// Configs is what a server process (a master, a worker) needs: the
// configuration it serves with and the one it dials peers with; both nil
// when no TLS file is given (plain connections).
func (f TLSFiles) Configs() (server, client *tls.Config, err error) {
	if !f.Enabled() {
		return nil, nil, nil
	}
	if server, err = f.Server(); err != nil {
		return nil, nil, err
	}
	if client, err = f.Client(); err != nil {
		return nil, nil, err
	}
	return server, client, nil
}

// WithTLS sets a transport's TLS configuration (nil leaves it plain) and
// returns it.
func WithTLS(t *http.Transport, cfg *tls.Config) *http.Transport {
	if cfg != nil {
		t.TLSClientConfig = cfg
	}
	return t
}

// DevTLS returns the TLS files in dir (ca.pem, cert.pem, key.pem), making a
// CA and a certificate for hosts when they are missing: what cairn dev
// --tls and the tests use. The certificate serves and authenticates as a
// client; it is good for a year. Not for production: give real
// certificates there.
func DevTLS(dir string, hosts []string) (TLSFiles, error) {
	f := TLSFiles{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem")}
	if _, err := os.Stat(f.Key); err == nil {
		return f, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return f, err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return f, err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cairn dev CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return f, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return f, err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "cairn"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range append(hosts, "localhost", "127.0.0.1", "::1") {
		if ip := net.ParseIP(h); ip != nil {
			leaf.IPAddresses = append(leaf.IPAddresses, ip)
		} else if h != "" {
			leaf.DNSNames = append(leaf.DNSNames, h)
		}
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return f, err
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		return f, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return f, err
	}
	// The key last: its presence says the set is whole.
	for _, w := range []struct {
		path  string
		block *pem.Block
	}{
		{f.CA, &pem.Block{Type: "CERTIFICATE", Bytes: caDER}},
		{f.Cert, &pem.Block{Type: "CERTIFICATE", Bytes: leafDER}},
		{f.Key, &pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}},
	} {
		if err := os.WriteFile(w.path, pem.EncodeToMemory(w.block), 0o600); err != nil {
			return f, fmt.Errorf("write %s: %w", w.path, err)
		}
	}
	return f, nil
}
