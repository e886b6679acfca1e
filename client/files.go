package client

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"connectrpc.com/connect"

	"github.com/cairnhq/cairn/placement"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

// Files reads and writes file data: namespace calls go to the masters, the
// bytes to the workers that own each path under the current cluster map.
type Files struct {
	c       *Client
	hc      *http.Client
	mu      sync.Mutex
	workers map[string]cairnv1connect.DataServiceClient
}

// Files returns the data-plane client.
func (c *Client) Files() *Files {
	return &Files{c: c, hc: &http.Client{Transport: c.data}, workers: make(map[string]cairnv1connect.DataServiceClient)}
}

func (f *Files) worker(addr string) cairnv1connect.DataServiceClient {
	f.mu.Lock()
	defer f.mu.Unlock()
	w, ok := f.workers[addr]
	if !ok {
		// File data travels uncompressed (see apiserver.DataHandlerOptions).
		w = cairnv1connect.NewDataServiceClient(f.hc, f.c.scheme+"://"+addr, connect.WithAcceptCompression("gzip", nil, nil))
		f.workers[addr] = w
	}
	return w
}

// owner is a worker that owns a path.
type owner struct{ id, addr string }

// owners returns the owners of path under the current map, primary
// first, for replication r (0: the map's R).
func (f *Files) owners(ctx context.Context, path string, r uint32) ([]owner, uint64, error) {
	of, epoch, err := f.ownersOf(ctx)
	if err != nil {
		return nil, epoch, err
	}
	return of(path, r), epoch, nil
}

// ownersOf fetches the current map once and returns the owner function
// under it, for callers that place many paths.
func (f *Files) ownersOf(ctx context.Context) (func(path string, r uint32) []owner, uint64, error) {
	cm, err := Call(ctx, f.c, func(ctx context.Context, s Services) (*cairnv1.ClusterMap, error) {
		resp, err := s.Cluster.GetClusterMap(ctx, connect.NewRequest(&cairnv1.GetClusterMapRequest{}))
		if err != nil {
			return nil, err
		}
		return resp.Msg.GetMap(), nil
	})
	if err != nil {
		return nil, 0, err
	}
	if len(cm.GetWorkers()) == 0 {
		return nil, cm.GetEpoch(), connect.NewError(connect.CodeUnavailable, fmt.Errorf("no ACTIVE workers in the cluster map (epoch %d)", cm.GetEpoch()))
	}
	pm, err := placement.FromClusterMap(cm)
	if err != nil {
		return nil, 0, err
	}
	addrs := make(map[string]string, len(cm.GetWorkers()))
	for _, w := range cm.GetWorkers() {
		addrs[w.GetId()] = w.GetAddress()
	}
	return func(path string, r uint32) []owner {
		n := int(r)
		if n == 0 {
			n = int(max(cm.GetReplication(), 1))
		}
		var out []owner
		for _, i := range pm.OwnersN(nil, path, n) {
			out = append(out, owner{id: pm.ID(i), addr: addrs[pm.ID(i)]})
		}
		return out
	}, cm.GetEpoch(), nil
}

// Stat returns the namespace's record of path.
func (f *Files) Stat(ctx context.Context, path string) (*cairnv1.File, error) {
	return Call(ctx, f.c, func(ctx context.Context, s Services) (*cairnv1.File, error) {
		resp, err := s.Namespace.GetFile(ctx, connect.NewRequest(&cairnv1.GetFileRequest{Path: path}))
		if err != nil {
			return nil, err
		}
		return resp.Msg.GetFile(), nil
	})
}

// List returns the files at or under prefix, all pages.
func (f *Files) List(ctx context.Context, prefix string, fn func(*cairnv1.File) error) error {
	after := ""
	for {
		resp, err := Msg(ctx, f.c, func(ctx context.Context, s Services) (*connect.Response[cairnv1.ListFilesResponse], error) {
			return s.Namespace.ListFiles(ctx, connect.NewRequest(&cairnv1.ListFilesRequest{Prefix: prefix, After: after}))
		})
		if err != nil {
			return err
		}
		for _, file := range resp.GetFiles() {
			if err := fn(file); err != nil {
				return err
			}
		}
		if resp.GetNextAfter() == "" {
			return nil
		}
		after = resp.GetNextAfter()
	}
}

// Delete removes path (recursively with recursive) from the namespace and
// drops the cached copies its owners hold. It returns how many files the
// namespace removed.
func (f *Files) Delete(ctx context.Context, path string, recursive bool) (uint64, error) {
	var victims []*cairnv1.File
	if err := f.List(ctx, path, func(file *cairnv1.File) error {
		victims = append(victims, file)
		return nil
	}); err != nil && connect.CodeOf(err) != connect.CodeNotFound {
		return 0, err
	}
	n, err := Call(ctx, f.c, func(ctx context.Context, s Services) (uint64, error) {
		r, err := s.Namespace.DeleteFile(ctx, connect.NewRequest(&cairnv1.DeleteFileRequest{Path: path, Recursive: recursive}))
		if err != nil {
			return 0, err
		}
		return r.Msg.GetDeleted(), nil
	})
	if err != nil {
		return 0, err
	}
	ownersOf, _, err := f.ownersOf(ctx)
	if err != nil {
		return n, nil // the namespace no longer has them; cleanup removes the stale copies
	}
	for _, file := range victims {
		for _, ow := range ownersOf(file.GetPath(), file.GetReplication()) {
			f.worker(ow.addr).Delete(ctx, connect.NewRequest(&cairnv1.DataServiceDeleteRequest{Path: file.GetPath(), Version: file.GetVersion()}))
		}
	}
	return n, nil
}
