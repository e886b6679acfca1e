package main

import (
	"context"
	"fmt"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cairnhq/cairn/client"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

func newEventsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Read the journal as it is written, and add notes to it",
	}
	var from uint64
	var noFollow bool
	tail := &cobra.Command{
		Use:   "tail [--from INDEX] [--no-follow]",
		Short: "Print the journal's events from INDEX (default: the oldest still in the log), then follow",
		Long: `Print every event in the journal from --from on, one line each: raft index,
position in the entry, leader time, kind and body. It follows new events
until interrupted, unless --no-follow. With --json each line is one JSON
object. If the master restarts or dies, tail goes on from the next master.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			next := from
			return c.Do(ctx, func(ctx context.Context, s client.Services) error {
				stream, err := s.Events.TailEvents(ctx, connect.NewRequest(&cairnv1.TailEventsRequest{FromIndex: next, NoFollow: noFollow}))
				if err != nil {
					return err
				}
				defer stream.Close()
				for stream.Receive() {
					m := stream.Msg()
					if err := printEvent(g, m); err != nil {
						return err
					}
					next = m.GetIndex() + 1
				}
				if err := stream.Err(); err != nil && ctx.Err() == nil {
					return err
				}
				return nil
			})
		},
	}
	tail.Flags().Uint64Var(&from, "from", 0, "first raft index to print")
	tail.Flags().BoolVar(&noFollow, "no-follow", false, "stop at the end of the journal instead of following it")

	note := &cobra.Command{
		Use:   "note TEXT",
		Short: "Append a note to the journal (e.g. \"drill 3: killing the leader\")",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, cancel, err := g.session(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			resp, err := client.Msg(ctx, c, func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.AppendNoteResponse], error) {
				return s.Events.AppendNote(ctx, connect.NewRequest(&cairnv1.AppendNoteRequest{Text: strings.Join(args, " ")}))
			})
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(resp)
			}
			fmt.Fprintf(g.out, "noted at index %d\n", resp.GetIndex())
			return nil
		},
	}
	cmd.AddCommand(tail, note)
	return cmd
}

func printEvent(g *globals, m *cairnv1.TailEventsResponse) error {
	if g.json {
		b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(g.out, string(b))
		return err
	}
	ev := m.GetEvent()
	kind, body := "unknown", ""
	ev.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.ContainingOneof() != nil {
			kind = string(fd.Name())
			b, _ := protojson.MarshalOptions{UseProtoNames: true}.Marshal(v.Message().Interface())
			body = string(b)
		}
		return true
	})
	who := ""
	if ev.GetActor() != "" {
		who = "  by " + ev.GetActor()
	}
	_, err := fmt.Fprintf(g.out, "%d.%d  %s  %s  %s%s\n", m.GetIndex(), m.GetPosition(), fmtTime(ev.GetTime()), kind, body, who)
	return err
}
