package journal

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Identity says which master a data folder belongs to and in which
// cluster, and holds the cluster secret the master proves membership with
// on the raft port (hex; empty for a master that runs with --insecure).
type Identity struct {
	NodeID        string `json:"node_id"`
	ClusterID     string `json:"cluster_id"`
	ClusterSecret string `json:"cluster_secret,omitempty"`
}

// Secret is the cluster secret's bytes, nil when there is none.
func (id Identity) Secret() ([]byte, error) {
	if id.ClusterSecret == "" {
		return nil, nil
	}
	b, err := hex.DecodeString(id.ClusterSecret)
	if err != nil || len(b) < 16 {
		return nil, fmt.Errorf("identity.json: cluster_secret is not a secret of at least 16 bytes in hex")
	}
	return b, nil
}

const identityFile = "identity.json"

// ReadIdentity reads DATA/identity.json. A folder without one returns a zero
// Identity and no error.
func ReadIdentity(dir string) (Identity, error) {
	var id Identity
	b, err := os.ReadFile(filepath.Join(dir, identityFile))
	if errors.Is(err, os.ErrNotExist) {
		return id, nil
	}
	if err != nil {
		return id, fmt.Errorf("read identity: %w", err)
	}
	if err := json.Unmarshal(b, &id); err != nil {
		return id, fmt.Errorf("read identity %s: %w", filepath.Join(dir, identityFile), err)
	}
	return id, nil
}

// WriteIdentity writes DATA/identity.json atomically (temp file, fsync,
// rename), readable by its owner only: it holds the cluster secret.
func WriteIdentity(dir string, id Identity) error {
	b, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, identityFile)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("write identity: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("write identity: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write identity: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write identity: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write identity: %w", err)
	}
	return nil
}

// NewClusterID returns a fresh random cluster id ("c-" and 16 hex digits).
func NewClusterID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return "c-" + hex.EncodeToString(b[:])
}
