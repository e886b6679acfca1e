package master

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairnhq/cairn/apiserver"
	"github.com/cairnhq/cairn/persistence"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
	"github.com/cairnhq/cairn/proto/cairn/v1/cairnv1connect"
)

// namespaceService serves the file namespace from the journal.
type namespaceService struct{ m *Master }

var _ cairnv1connect.NamespaceServiceHandler = (*namespaceService)(nil)

// cleanPath checks a path at the edge, with the state machine's rules.
func cleanPath(p string) (string, error) {
	c, err := persistence.CleanPath(p)
	if err != nil {
		return "", connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("path: %w", err))
	}
	return c, nil
}

func (s *namespaceService) CreateFile(ctx context.Context, req *connect.Request[cairnv1.CreateFileRequest]) (*connect.Response[cairnv1.CreateFileResponse], error) {
	return onLeader(ctx, s.m, req, s.createFile)
}

func (s *namespaceService) createFile(ctx context.Context, msg *cairnv1.CreateFileRequest) (*cairnv1.CreateFileResponse, error) {
	p, err := cleanPath(msg.GetPath())
	if err != nil {
		return nil, err
	}
	r, err := s.m.proposeOne(ctx, "create "+p, fromCaller(ctx, &cairnv1.Event{
		Kind: &cairnv1.Event_FileCreated{FileCreated: &cairnv1.FileCreated{
			Path: p, WriteType: msg.GetWriteType(), BlockSize: msg.GetBlockSize(),
			Replication: msg.GetReplication(), Overwrite: msg.GetOverwrite()}}}))
	if err != nil {
		return nil, err
	}
	pw, _ := r.Record.(*cairnv1.PendingWrite)
	return &cairnv1.CreateFileResponse{Write: pw}, nil
}

func (s *namespaceService) CompleteFile(ctx context.Context, req *connect.Request[cairnv1.CompleteFileRequest]) (*connect.Response[cairnv1.CompleteFileResponse], error) {
	return onLeader(ctx, s.m, req, s.completeFile)
}

func (s *namespaceService) completeFile(ctx context.Context, msg *cairnv1.CompleteFileRequest) (*cairnv1.CompleteFileResponse, error) {
	p, err := cleanPath(msg.GetPath())
	if err != nil {
		return nil, err
	}
	r, err := s.m.proposeOne(ctx, "complete "+p, fromCaller(ctx, &cairnv1.Event{
		Kind: &cairnv1.Event_FileCompleted{FileCompleted: &cairnv1.FileCompleted{
			Path: p, Version: msg.GetVersion(), Length: msg.GetLength(), Checksum: msg.GetChecksum(), Etag: msg.GetEtag(), Metadata: msg.GetMetadata(), UfsMtime: msg.GetUfsMtime(),
			UfsEtag: msg.GetUfsEtag(), UfsVersionId: msg.GetUfsVersionId()}}}))
	if err != nil {
		return nil, err
	}
	f, _ := r.Record.(*cairnv1.File)
	return &cairnv1.CompleteFileResponse{File: f}, nil
}

func (s *namespaceService) GetFile(ctx context.Context, req *connect.Request[cairnv1.GetFileRequest]) (*connect.Response[cairnv1.GetFileResponse], error) {
	p, err := cleanPath(req.Msg.GetPath())
	if err != nil {
		return nil, err
	}
	f, ok, err := s.m.j.State().File(p)
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	if !ok {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("%s: no such file", p))
	}
	return connect.NewResponse(&cairnv1.GetFileResponse{File: f}), nil
}

func (s *namespaceService) ListFiles(ctx context.Context, req *connect.Request[cairnv1.ListFilesRequest]) (*connect.Response[cairnv1.ListFilesResponse], error) {
	p, err := cleanPath(req.Msg.GetPrefix())
	if err != nil {
		return nil, err
	}
	files, next, err := s.m.j.State().ListFiles(p, req.Msg.GetAfter(), int(req.Msg.GetLimit()))
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	return connect.NewResponse(&cairnv1.ListFilesResponse{Files: files, NextAfter: next}), nil
}

func (s *namespaceService) DeleteFile(ctx context.Context, req *connect.Request[cairnv1.DeleteFileRequest]) (*connect.Response[cairnv1.DeleteFileResponse], error) {
	return onLeader(ctx, s.m, req, s.deleteFile)
}

func (s *namespaceService) deleteFile(ctx context.Context, msg *cairnv1.DeleteFileRequest) (*cairnv1.DeleteFileResponse, error) {
	p := msg.GetPath()
	if p != "/" {
		var err error
		if p, err = cleanPath(p); err != nil {
			return nil, err
		}
	}
	r, err := s.m.proposeOne(ctx, "delete "+p, fromCaller(ctx, &cairnv1.Event{
		Kind: &cairnv1.Event_FileDeleted{FileDeleted: &cairnv1.FileDeleted{Path: p, Recursive: msg.GetRecursive()}}}))
	if err != nil {
		return nil, err
	}
	return &cairnv1.DeleteFileResponse{Deleted: r.Value}, nil
}

func (s *namespaceService) LoadFile(ctx context.Context, req *connect.Request[cairnv1.LoadFileRequest]) (*connect.Response[cairnv1.LoadFileResponse], error) {
	return onLeader(ctx, s.m, req, s.loadFile)
}

func (s *namespaceService) loadFile(ctx context.Context, msg *cairnv1.LoadFileRequest) (*cairnv1.LoadFileResponse, error) {
	p, err := cleanPath(msg.GetPath())
	if err != nil {
		return nil, err
	}
	st := s.m.j.State()
	if f, ok, err := st.File(p); err != nil {
		return nil, connect.NewError(connect.CodeInternal, err)
	} else if ok {
		return &cairnv1.LoadFileResponse{File: f}, nil
	}
	tg, err := s.m.resolve(ctx, p)
	if err != nil {
		return nil, err
	}
	info, err := tg.UFS.Stat(ctx, tg.Path)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("%s: no such file in cairn or in the UFS mounted at %s", p, tg.Label()))
	case err != nil:
		return nil, apiserver.UFSError("stat "+p, err)
	case info.IsDir:
		return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("%s is a folder in the UFS mounted at %s", p, tg.Label()))
	}
	r, err := s.m.proposeOne(ctx, "load "+p, fromCaller(ctx, &cairnv1.Event{
		Kind: &cairnv1.Event_FileLoaded{FileLoaded: &cairnv1.FileLoaded{
			Path: p, Length: uint64(info.Size), UfsMtime: timestamppb.New(info.ModTime), UfsEtag: info.ETag, UfsVersionId: info.VersionID}}}))
	if err != nil {
		return nil, err
	}
	f, _ := r.Record.(*cairnv1.File)
	s.m.log.Info("loaded a file from the UFS", "path", p, "bytes", info.Size, "version", f.GetVersion())
	return &cairnv1.LoadFileResponse{File: f}, nil
}

func (s *namespaceService) GetFiles(ctx context.Context, req *connect.Request[cairnv1.GetFilesRequest]) (*connect.Response[cairnv1.GetFilesResponse], error) {
	files, pending, err := s.m.j.State().Files(req.Msg.GetPaths())
	if err != nil {
		return nil, internal(err)
	}
	return connect.NewResponse(&cairnv1.GetFilesResponse{Files: files, Pending: pending}), nil
}

func (s *namespaceService) ListMounts(ctx context.Context, _ *connect.Request[cairnv1.ListMountsRequest]) (*connect.Response[cairnv1.ListMountsResponse], error) {
	mounts, err := s.m.j.State().Mounts()
	if err != nil {
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	return connect.NewResponse(&cairnv1.ListMountsResponse{Mounts: mounts}), nil
}
