package master

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/cairnhq/cairn/apiserver"
	"github.com/cairnhq/cairn/journal"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

// peerClusterID asks the master at addr for its cluster id, waiting (up to
// wait) for it to answer and to know its cluster.
func (m *Master) peerClusterID(ctx context.Context, addr string, wait time.Duration) (string, error) {
	cli := cairnv1connect.NewOperatorServiceClient(m.peers, m.cfg.TLS.Scheme()+"://"+addr)
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var last error
	for {
		// The peer's own view (stale-any): while it has no leader (every
		// master restarting at once) it still knows its cluster.
		req := connect.NewRequest(&cairnv1.GetStatusRequest{})
		req.Header().Set(ConsistencyHeader, apiserver.ConsistencyStaleAny)
		resp, err := cli.GetStatus(ctx, req)
		if err == nil && resp.Msg.GetClusterId() != "" {
			return resp.Msg.GetClusterId(), nil
		}
		if err == nil {
			err = errors.New("it has no cluster id yet")
		}
		if hopeless(err) {
			return "", fmt.Errorf("ask %s which cluster to join: %w", addr, err)
		}
		last = err
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("ask %s which cluster to join: %w", addr, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// hopeless reports whether asking a peer again cannot help: it refused this
// master's token, or TLS failed on a certificate (another CA, none given).
func hopeless(err error) bool {
	var verify *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	switch {
	case errors.As(err, &verify), errors.As(err, &unknownCA), errors.As(err, &hostname):
		return true
	case strings.Contains(err.Error(), "remote error: tls: "): // the peer refused our certificate
		return true
	}
	code := connect.CodeOf(err)
	return code == connect.CodeUnauthenticated || code == connect.CodePermissionDenied
}

// isMember reports whether the local raft configuration already lists
// this master (a restart of a member: no need to join again).
func (m *Master) isMember() bool {
	servers, err := m.j.Servers()
	if err != nil {
		return false
	}
	for _, s := range servers {
		if s.ID == m.cfg.ID {
			return true
		}
	}
	return false
}

// join asks the cluster (through addr, which forwards to the leader) to
// add this master as a voter.
func (m *Master) join(ctx context.Context) error {
	cli := cairnv1connect.NewOperatorServiceClient(m.peers, m.cfg.TLS.Scheme()+"://"+m.cfg.Join)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req := &cairnv1.JoinClusterRequest{MasterId: m.cfg.ID, RaftAddress: m.j.RaftAddress(), ApiAddress: m.cfg.APIAdvertise, ClusterId: m.ident.ClusterID}
	// First the cluster secret (prepare), so that the leader can reach this
	// master's raft port as soon as it is a voter; then the join itself.
	for _, prepare := range []bool{true, false} {
		req.Prepare = prepare
		for {
			resp, err := cli.JoinCluster(ctx, connect.NewRequest(req))
			if err == nil {
				if err := m.adoptSecret(resp.Msg.GetClusterSecret()); err != nil {
					return err
				}
				break
			}
			switch connect.CodeOf(err) {
			case connect.CodeFailedPrecondition, connect.CodeInvalidArgument, connect.CodeUnauthenticated, connect.CodePermissionDenied:
				return fmt.Errorf("join the cluster through %s: %w", m.cfg.Join, err)
			}
			m.log.Warn("join failed; retrying", "via", m.cfg.Join, "err", err)
			select {
			case <-ctx.Done():
				return fmt.Errorf("join the cluster through %s: %w", m.cfg.Join, err)
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	m.log.Info("joined the cluster", "via", m.cfg.Join, "cluster", m.ident.ClusterID)
	return nil
}

// adoptSecret keeps the cluster secret the leader handed over at join: the
// raft port proves and checks it from now on, and identity.json keeps it.
func (m *Master) adoptSecret(secret []byte) error {
	if m.cfg.Insecure {
		return nil
	}
	if len(secret) == 0 {
		return errors.New("the cluster runs without a cluster secret (its masters run with --insecure): start this master with --insecure too")
	}
	m.j.SetClusterSecret(secret)
	m.ident.ClusterSecret = hex.EncodeToString(secret)
	return journal.WriteIdentity(m.cfg.DataDir, m.ident)
}
