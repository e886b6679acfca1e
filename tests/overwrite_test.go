package tests

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/cespare/xxhash/v2"

	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/placement"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

// unfinishedPut is a put stopped before CompleteFile: created on the
// masters, with its bytes sent to some or all of the owners.
type unfinishedPut struct {
	pw   *cairnv1.PendingWrite
	data []byte
}

// TestOverwriteUnfinished: an overwrite whose bytes reach the owners but
// which never completes (its client died, its CompleteFile was lost, a
// newer put overtook it) leaves the published version readable, byte for
// byte, on every owner; the older copy goes only once a newer version is
// published or the unfinished write is abandoned.
func TestOverwriteUnfinished(t *testing.T) {
	c := startClusterWith(t, 1, 3, []string{"--write-timeout", "4s"}, []string{"--block-size", fmt.Sprint(testBlock)})
	ctx := context.Background()
	files := c.client().Files()
	ns := c.client().Masters()[0].Namespace
	if out, err := cairn(t, "cluster", "replication", "2", "--masters", c.addrs()); err != nil {
		t.Fatalf("replication 2: %v\n%s", err, out)
	}
	ws, cm := workerClients(t, c)
	pm, err := placement.FromClusterMap(cm)
	if err != nil {
		t.Fatal(err)
	}
	put := func(t *testing.T, path string, data []byte) *cairnv1.File {
		t.Helper()
		f, err := files.Put(ctx, path, bytes.NewReader(data), int64(len(data)), client.PutOptions{Overwrite: true})
		if err != nil {
			t.Fatalf("put %s: %v", path, err)
		}
		return f
	}
	create := func(t *testing.T, path string, seed uint64) unfinishedPut {
		t.Helper()
		r, err := ns.CreateFile(ctx, connect.NewRequest(&cairnv1.CreateFileRequest{Path: path, WriteType: cairnv1.WriteType_WRITE_TYPE_MUST_CACHE, Overwrite: true}))
		if err != nil {
			t.Fatalf("create %s: %v", path, err)
		}
		return unfinishedPut{pw: r.Msg.GetWrite(), data: randomBytes(3*testBlock+int(seed), seed)}
	}
	// send writes u's bytes to every owner as Files.Put does, and returns
	// each owner's answer.
	send := func(u unfinishedPut) []error {
		var errs []error
		for _, id := range pm.OwnerIDs(u.pw.GetPath()) {
			st := ws[id].Write(ctx)
			st.Send(&cairnv1.WriteRequest{Part: &cairnv1.WriteRequest_Header{Header: &cairnv1.WriteHeader{
				Identity:   &cairnv1.FileIdentity{Path: u.pw.GetPath(), Version: u.pw.GetVersion(), Length: uint64(len(u.data))},
				WriteType:  cairnv1.WriteType_WRITE_TYPE_MUST_CACHE,
				NewVersion: true, Replaces: u.pw.GetReplaces(), ChecksumLast: true}}})
			st.Send(&cairnv1.WriteRequest{Part: &cairnv1.WriteRequest_Chunk{Chunk: u.data}})
			st.Send(&cairnv1.WriteRequest{Part: &cairnv1.WriteRequest_Checksum{Checksum: xxhash.Sum64(u.data)}})
			_, err := st.CloseAndReceive()
			errs = append(errs, err)
		}
		return errs
	}
	sendOK := func(t *testing.T, u unfinishedPut) {
		t.Helper()
		for _, err := range send(u) {
			if err != nil {
				t.Fatalf("send version %d of %s: %v", u.pw.GetVersion(), u.pw.GetPath(), err)
			}
		}
	}
	// readsAs checks that the namespace publishes version want of path and
	// that Get and every owner serve exactly data for it.
	readsAs := func(t *testing.T, path string, want uint64, data []byte) {
		t.Helper()
		var got bytes.Buffer
		f, err := files.Get(ctx, path, &got, client.GetOptions{NoShortCircuit: true})
		if err != nil || f.GetVersion() != want || !bytes.Equal(got.Bytes(), data) {
			t.Fatalf("get %s: version %d, %d bytes, equal %v, err %v; want version %d", path, f.GetVersion(), got.Len(), bytes.Equal(got.Bytes(), data), err, want)
		}
		for _, id := range pm.OwnerIDs(path) {
			if b, err := readOwner(ctx, ws[id], path, want); err != nil || !bytes.Equal(b, data) {
				t.Fatalf("owner %s: version %d of %s: %v (equal %v)", id, want, path, err, bytes.Equal(b, data))
			}
		}
	}
	// gone checks that no owner holds version v of path any more.
	gone := func(t *testing.T, path string, v uint64) {
		t.Helper()
		for _, id := range pm.OwnerIDs(path) {
			if _, err := readOwner(ctx, ws[id], path, v); connect.CodeOf(err) != connect.CodeNotFound {
				t.Fatalf("owner %s still serves version %d of %s: %v", id, v, path, err)
			}
		}
	}

	t.Run("an overwrite that never completes", func(t *testing.T) {
		v1 := randomBytes(2*testBlock+7, 1)
		f1 := put(t, "/ow/never", v1)
		u := create(t, "/ow/never", 2)
		sendOK(t, u)
		readsAs(t, "/ow/never", f1.GetVersion(), v1)
		// A newer version published: a read of it drops the older copy.
		v3 := randomBytes(testBlock, 3)
		f3 := put(t, "/ow/never", v3)
		readsAs(t, "/ow/never", f3.GetVersion(), v3)
		gone(t, "/ow/never", f1.GetVersion())
	})

	t.Run("two overwrites that never complete", func(t *testing.T) {
		v1 := randomBytes(testBlock+1, 4)
		f1 := put(t, "/ow/twice", v1)
		a, b := create(t, "/ow/twice", 5), create(t, "/ow/twice", 6)
		sendOK(t, a)
		sendOK(t, b)
		readsAs(t, "/ow/twice", f1.GetVersion(), v1)
	})

	t.Run("the older overwrite's bytes land last", func(t *testing.T) {
		v1 := randomBytes(testBlock, 7)
		f1 := put(t, "/ow/late", v1)
		older, newer := create(t, "/ow/late", 8), create(t, "/ow/late", 9)
		sendOK(t, newer)
		for _, err := range send(older) {
			if connect.CodeOf(err) != connect.CodeFailedPrecondition {
				t.Fatalf("the older write landing after a newer one: %v, want FailedPrecondition", err)
			}
		}
		readsAs(t, "/ow/late", f1.GetVersion(), v1)
		// The newer put completes: it is what every owner serves.
		if _, err := ns.CompleteFile(ctx, connect.NewRequest(&cairnv1.CompleteFileRequest{Path: "/ow/late", Version: newer.pw.GetVersion(),
			Length: uint64(len(newer.data)), Checksum: xxhash.Sum64(newer.data)})); err != nil {
			t.Fatal(err)
		}
		readsAs(t, "/ow/late", newer.pw.GetVersion(), newer.data)
		gone(t, "/ow/late", f1.GetVersion())
	})

	t.Run("an abandoned overwrite gives the published version back", func(t *testing.T) {
		v1 := randomBytes(testBlock+9, 10)
		f1 := put(t, "/ow/abandoned", v1)
		u := create(t, "/ow/abandoned", 11)
		sendOK(t, u)
		// The leader abandons the write after --write-timeout; a worker's
		// next settle pass then drops its copy, and the published version
		// is current again (what Stat, cleanup and rebalance see).
		eventually(t, 60*time.Second, "the owners to drop the abandoned version", func() bool {
			for _, id := range pm.OwnerIDs("/ow/abandoned") {
				r, err := ws[id].Stat(ctx, connect.NewRequest(&cairnv1.StatRequest{Paths: []string{"/ow/abandoned"}}))
				if err != nil || len(r.Msg.GetFiles()) != 1 || r.Msg.GetFiles()[0].GetIdentity().GetVersion() != f1.GetVersion() {
					return false
				}
			}
			return true
		})
		gone(t, "/ow/abandoned", u.pw.GetVersion())
		readsAs(t, "/ow/abandoned", f1.GetVersion(), v1)
	})
}

// readOwner reads version v of path from one worker's cache only (no UFS
// fallback).
func readOwner(ctx context.Context, w cairnv1connect.DataServiceClient, path string, v uint64) ([]byte, error) {
	st, err := w.Read(ctx, connect.NewRequest(&cairnv1.ReadRequest{Path: path, Version: v}))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var b bytes.Buffer
	for st.Receive() {
		b.Write(st.Msg().GetChunk())
	}
	return b.Bytes(), st.Err()
}
