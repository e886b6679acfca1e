package master

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

func (s *namespaceService) AddMount(ctx context.Context, req *connect.Request[cairnv1.AddMountRequest]) (*connect.Response[cairnv1.AddMountResponse], error) {
	return onLeader(ctx, s.m, req, s.addMount)
}

func (s *namespaceService) addMount(ctx context.Context, msg *cairnv1.AddMountRequest) (*cairnv1.AddMountResponse, error) {
	return nil, connect.NewError(connect.CodeUnimplemented, errors.New("mount add: not yet"))
}

func (s *namespaceService) RemoveMount(ctx context.Context, req *connect.Request[cairnv1.RemoveMountRequest]) (*connect.Response[cairnv1.RemoveMountResponse], error) {
	return onLeader(ctx, s.m, req, s.removeMount)
}

func (s *namespaceService) removeMount(ctx context.Context, msg *cairnv1.RemoveMountRequest) (*cairnv1.RemoveMountResponse, error) {
	return nil, connect.NewError(connect.CodeUnimplemented, errors.New("mount rm: not yet"))
}
