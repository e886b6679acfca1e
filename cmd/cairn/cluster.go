package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cairnhq/cairn/client"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

func newClusterCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Show and change the cluster map: workers, their states, replication",
		Long: `The cluster map lists the ACTIVE workers and the replication factor R. Every
change of the active set, of a capacity or of R makes a new epoch.`,
	}
	var epoch uint64
	show := &cobra.Command{
		Use:   "show",
		Short: "Show the epoch, the replication factor and every worker with its state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ctx, cancel, err := g.session(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			resp, err := client.Msg(ctx, c, func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.GetClusterMapResponse], error) {
				return s.Cluster.GetClusterMap(ctx, connect.NewRequest(&cairnv1.GetClusterMapRequest{Epoch: epoch}))
			})
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(resp)
			}
			cm := resp.GetMap()
			fmt.Fprintf(g.out, "cluster %s  epoch %d  replication %d  active workers %d\n", resp.GetClusterId(), cm.GetEpoch(), cm.GetReplication(), len(cm.GetWorkers()))
			if cm.GetCause() != "" {
				fmt.Fprintf(g.out, "epoch %d since %s: %s\n", cm.GetEpoch(), fmtTime(cm.GetTime()), cm.GetCause())
			}
			fmt.Fprintln(g.out)
			inMap := make(map[string]bool)
			for _, w := range cm.GetWorkers() {
				inMap[w.GetId()] = true
			}
			var rows [][]string
			for _, w := range resp.GetWorkers() {
				in := "no"
				if inMap[w.GetId()] {
					in = "yes"
				}
				rows = append(rows, []string{w.GetId(), w.GetAddress(), shortEnum(w.GetState().String(), "WORKER_STATE_"), in, formatSize(w.GetCapacityBytes()),
					strconv.FormatUint(w.GetCleanEpoch(), 10), fmtTime(w.GetStateTime()), w.GetStateReason()})
			}
			return g.table([]string{"WORKER", "ADDRESS", "STATE", "IN MAP", "CAPACITY", "CLEAN EPOCH", "SINCE", "REASON"}, rows)
		},
	}
	show.Flags().Uint64Var(&epoch, "epoch", 0, "show the map at this epoch (default: the current one)")

	replication := &cobra.Command{
		Use:   "replication N",
		Short: "Set the replication factor R (1..16): how many workers own each file",
		Args:  exactArgs(1, "the replication factor N"),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.ParseUint(args[0], 10, 32)
			if err != nil {
				return usageError{fmt.Errorf("replication %q is not a number", args[0])}
			}
			c, ctx, cancel, err := g.session(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			resp, err := client.Msg(ctx, c, func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.SetReplicationResponse], error) {
				return s.Cluster.SetReplication(ctx, connect.NewRequest(&cairnv1.SetReplicationRequest{Replication: uint32(n)}))
			})
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(resp)
			}
			fmt.Fprintf(g.out, "replication %d at epoch %d\n", resp.GetMap().GetReplication(), resp.GetMap().GetEpoch())
			return nil
		},
	}
	cmd.AddCommand(show, replication,
		workerVerb(g, "maintenance", "Take a worker out of the map for maintenance (it keeps its data)",
			func(ctx context.Context, s client.Services, id, reason string) (*cairnv1.Worker, uint64, error) {
				r, err := s.Cluster.MaintainWorker(ctx, connect.NewRequest(&cairnv1.MaintainWorkerRequest{WorkerId: id, Reason: reason}))
				if err != nil {
					return nil, 0, err
				}
				return r.Msg.GetWorker(), r.Msg.GetEpoch(), nil
			}),
		workerVerb(g, "activate", "Put a worker in maintenance or decommissioning back into the map",
			func(ctx context.Context, s client.Services, id, reason string) (*cairnv1.Worker, uint64, error) {
				r, err := s.Cluster.ActivateWorker(ctx, connect.NewRequest(&cairnv1.ActivateWorkerRequest{WorkerId: id, Reason: reason}))
				if err != nil {
					return nil, 0, err
				}
				return r.Msg.GetWorker(), r.Msg.GetEpoch(), nil
			}),
		workerVerb(g, "decommission", "Take a worker out of the map for good",
			func(ctx context.Context, s client.Services, id, reason string) (*cairnv1.Worker, uint64, error) {
				r, err := s.Cluster.DecommissionWorker(ctx, connect.NewRequest(&cairnv1.DecommissionWorkerRequest{WorkerId: id, Reason: reason}))
				if err != nil {
					return nil, 0, err
				}
				return r.Msg.GetWorker(), r.Msg.GetEpoch(), nil
			}),
	)
	return cmd
}

// workerVerb builds "cluster <verb> WORKER_ID [--reason TEXT]".
func workerVerb(g *globals, verb, short string, call func(context.Context, client.Services, string, string) (*cairnv1.Worker, uint64, error)) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   verb + " WORKER_ID",
		Short: short,
		Args:  exactArgs(1, "a WORKER_ID (see: cairn cluster show)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, cancel, err := g.session(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			type answer struct {
				w     *cairnv1.Worker
				epoch uint64
			}
			a, err := client.Call(ctx, c, func(ctx context.Context, s client.Services) (answer, error) {
				w, e, err := call(ctx, s, args[0], reason)
				return answer{w, e}, err
			})
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(&cairnv1.MaintainWorkerResponse{Worker: a.w, Epoch: a.epoch})
			}
			fmt.Fprintf(g.out, "worker %s is %s; epoch %d\n", a.w.GetId(), shortEnum(a.w.GetState().String(), "WORKER_STATE_"), a.epoch)
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, recorded in the journal (up to 256 characters)")
	return cmd
}

func fmtTime(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().Local().Format(time.DateTime)
}
