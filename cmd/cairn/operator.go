package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/apiserver"
	"github.com/cairnhq/cairn/client"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

func newOperatorCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "operator",
		Short: "Operate the masters: status, raft peers, leadership, snapshots",
	}
	raftCmd := &cobra.Command{
		Use:   "raft",
		Short: "Raft membership and leadership",
	}
	raftCmd.AddCommand(newPeersCmd(g), newTransferCmd(g), newRemovePeerCmd(g), newSnapshotCmd(g))
	cmd.AddCommand(newStatusCmd(g), raftCmd, newSnapshotCmd(g))
	return cmd
}

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Ask every master given in --masters for its raft state, indexes and epoch",
		Long: `Ask every master given in --masters for its own view: raft state, the leader it
knows, term, applied index, the index it started from, and its epoch. Each
master answers from its own state at once (a stale-any read), so a master cut
off from the others, or behind them, still shows where it stands.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ctx, cancel, err := g.session(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			var all []*cairnv1.GetStatusResponse
			var rows [][]string
			for _, s := range c.Masters() {
				req := connect.NewRequest(&cairnv1.GetStatusRequest{})
				req.Header().Set(apiserver.ConsistencyHeader, apiserver.ConsistencyStaleAny)
				r, err := s.Operator.GetStatus(ctx, req)
				if err != nil {
					rows = append(rows, []string{"?", s.Addr, "unreachable: " + connect.CodeOf(err).String(), "", "", "", "", ""})
					continue
				}
				m := r.Msg
				all = append(all, m)
				rows = append(rows, []string{m.GetMasterId(), m.GetApiAddress(), shortEnum(m.GetRaftState().String(), "RAFT_STATE_"), m.GetLeaderId(),
					fmt.Sprint(m.GetTerm()), fmt.Sprint(m.GetAppliedIndex()), fmt.Sprint(m.GetStartAppliedIndex()), fmt.Sprint(m.GetEpoch())})
			}
			if g.json {
				return g.printJSON(all)
			}
			return g.table([]string{"MASTER", "API", "RAFT STATE", "LEADER", "TERM", "APPLIED", "START APPLIED", "EPOCH"}, rows)
		},
	}
}

func newPeersCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "peers",
		Short: "List the raft voters, their addresses and which one leads",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ctx, cancel, err := g.session(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			resp, err := client.Msg(ctx, c, func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.ListRaftPeersResponse], error) {
				return s.Operator.ListRaftPeers(ctx, connect.NewRequest(&cairnv1.ListRaftPeersRequest{}))
			})
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(resp)
			}
			var rows [][]string
			for _, p := range resp.GetPeers() {
				role := "follower"
				if p.GetLeader() {
					role = "leader"
				}
				if !p.GetVoter() {
					role += " (non-voter)"
				}
				rows = append(rows, []string{p.GetMasterId(), p.GetRaftAddress(), p.GetApiAddress(), role})
			}
			return g.table([]string{"MASTER", "RAFT ADDRESS", "API ADDRESS", "ROLE"}, rows)
		},
	}
}

func newTransferCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "transfer-leadership [MASTER_ID]",
		Short: "Hand leadership to MASTER_ID, or to the most caught-up voter",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			target := ""
			if len(args) == 1 {
				target = args[0]
			}
			c, ctx, cancel, err := g.session(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			resp, err := client.Msg(ctx, c, func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.TransferLeadershipResponse], error) {
				return s.Operator.TransferLeadership(ctx, connect.NewRequest(&cairnv1.TransferLeadershipRequest{TargetId: target}))
			})
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(resp)
			}
			fmt.Fprintf(g.out, "leader is now %s\n", resp.GetLeaderId())
			return nil
		},
	}
}

func newRemovePeerCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "remove-peer MASTER_ID",
		Short: "Remove a master from the raft configuration (for good: it must join again with an empty folder)",
		Args:  exactArgs(1, "a MASTER_ID (see: cairn operator raft peers)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, cancel, err := g.session(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			if err := c.Do(ctx, func(ctx context.Context, s client.Services) error {
				_, err := s.Operator.RemovePeer(ctx, connect.NewRequest(&cairnv1.RemovePeerRequest{MasterId: args[0]}))
				return err
			}); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(map[string]string{"removed": args[0]})
			}
			fmt.Fprintf(g.out, "removed %s\n", args[0])
			return nil
		},
	}
}

func newSnapshotCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Raft snapshots of the state machine",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "save FILE",
		Short: "Take a snapshot on one master and write it to FILE",
		Long: `Take a raft snapshot of the state machine on the first reachable master and
stream it into FILE (written through a temporary file, so FILE is complete
or absent). The snapshot holds the cluster map, workers and masters as of
the index printed.`,
		Args: exactArgs(1, "a FILE to write"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, cancel, err := g.session(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			dst := args[0]
			tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*")
			if err != nil {
				return fmt.Errorf("create %s: %w", dst, err)
			}
			defer os.Remove(tmp.Name())
			var index, term uint64
			var size int64
			err = c.Do(ctx, func(ctx context.Context, s client.Services) error {
				if _, err := tmp.Seek(0, io.SeekStart); err != nil {
					return err
				}
				if err := tmp.Truncate(0); err != nil {
					return err
				}
				size = 0
				stream, err := s.Operator.SaveSnapshot(ctx, connect.NewRequest(&cairnv1.SaveSnapshotRequest{}))
				if err != nil {
					return err
				}
				defer stream.Close()
				first := true
				for stream.Receive() {
					m := stream.Msg()
					if first {
						index, term, first = m.GetIndex(), m.GetTerm(), false
					}
					n, err := tmp.Write(m.GetChunk())
					if err != nil {
						return fmt.Errorf("write %s: %w", dst, err)
					}
					size += int64(n)
				}
				if err := stream.Err(); err != nil {
					return err
				}
				if first {
					return errors.New("the master sent no snapshot")
				}
				return nil
			})
			if err != nil {
				return err
			}
			if err := tmp.Sync(); err != nil {
				return err
			}
			if err := tmp.Close(); err != nil {
				return err
			}
			if err := os.Rename(tmp.Name(), dst); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(map[string]any{"file": dst, "index": index, "term": term, "bytes": size})
			}
			fmt.Fprintf(g.out, "saved snapshot at index %d (term %d), %s, to %s\n", index, term, formatSize(uint64(size)), dst)
			return nil
		},
	})
	return cmd
}
