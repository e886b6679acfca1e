package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/client"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

func newMountCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mount",
		Short: "The mount table: which UFS (a local folder, an S3 bucket) serves which path",
		Long: `A path is served by the mount with the longest path that holds it: with / on
file:///srv/ufs and /s3 on s3://bucket/prefix, /s3/a/b is the object
prefix/a/b of the bucket and /data/x the file /srv/ufs/data/x. Reads through
on a miss, uploads, CACHE_THROUGH and THROUGH writes, restores and the
removal of deleted files' copies all go through the table, and so do the
UFS paths of the async upload mapping.

Credentials for S3 are never part of a mount: every master and worker takes
them from its own environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,
or the shared credentials file ~/.aws/credentials, AWS_PROFILE). Changing
mounts is an admin's call: a mount decides which storage of the processes'
own (their folders, the buckets their credentials reach) token holders can
read and write through cairn. See docs/persistence.md.`,
	}
	cmd.AddCommand(newMountAddCmd(g), newMountListCmd(g), newMountRemoveCmd(g))
	return cmd
}

func newMountAddCmd(g *globals) *cobra.Command {
	var opts []string
	cmd := &cobra.Command{
		Use:   "add PATH URI [--option key=value]...",
		Short: "Mount a UFS at a path (admin): file:///DIR or s3://BUCKET/PREFIX",
		Long: `Mount a UFS at PATH. URI is file:///DIR (a folder every master and worker
reaches at that path) or s3://BUCKET[/PREFIX]. An s3 mount takes options:

  endpoint=http(s)://HOST:PORT   an S3-compatible server (default: AWS)
  region=REGION                  default us-east-1
  path_style=true                address buckets as endpoint/bucket (most servers but AWS)
  part_size_mib=N                parts of large uploads, 5 to 5120 (default 8)
  parallel_parts=N               parts of one upload in flight, 1 to 64 (default 4)

The leader checks the store first, with its own credentials (the bucket
exists, they are accepted): a mount that cannot work is refused and nothing
is journaled. A mount is refused where cairn already has files (their UFS
copies are where the current mounts put them) and inside the cache-only
mount.`,
		Example: `  cairn mount add /s3 s3://datasets/train --option endpoint=http://10.0.0.5:7070 --option path_style=true
  cairn mount add /archive file:///mnt/nfs/archive`,
		Args: exactArgs(2, "a path and a URI"),
		RunE: func(cmd *cobra.Command, args []string) error {
			options := map[string]string{}
			for _, o := range opts {
				k, v, ok := strings.Cut(o, "=")
				if !ok || k == "" {
					return usageError{fmt.Errorf("--option %q: want key=value", o)}
				}
				if _, dup := options[k]; dup {
					return usageError{fmt.Errorf("--option %s is given twice", k)}
				}
				options[k] = v
			}
			c, ctx, cancel, err := g.session(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			resp, err := client.Msg(ctx, c, func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.AddMountResponse], error) {
				return s.Namespace.AddMount(ctx, connect.NewRequest(&cairnv1.AddMountRequest{Path: args[0], Uri: args[1], Options: options}))
			})
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(resp)
			}
			fmt.Fprintf(g.out, "mounted %s at %s\n", describeMount(resp.GetMount()), resp.GetMount().GetPath())
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&opts, "option", nil, "a mount option key=value (repeat for more); see above")
	return cmd
}

func newMountListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the mounts: PATH, UFS, OPTIONS",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ctx, cancel, err := g.session(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			resp, err := client.Msg(ctx, c, func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.ListMountsResponse], error) {
				return s.Namespace.ListMounts(ctx, connect.NewRequest(&cairnv1.ListMountsRequest{}))
			})
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(resp)
			}
			var rows [][]string
			for _, m := range resp.GetMounts() {
				opts := "-"
				if len(m.GetOptions()) > 0 {
					var kv []string
					for k, v := range m.GetOptions() {
						kv = append(kv, k+"="+v)
					}
					sort.Strings(kv)
					opts = strings.Join(kv, ",")
				}
				if m.GetCacheOnly() && m.GetReplication() > 0 {
					opts = fmt.Sprintf("replication=%d", m.GetReplication())
				}
				if m.GetFromFlag() {
					opts += " (--ufs)"
				}
				rows = append(rows, []string{m.GetPath(), describeMount(m), opts})
			}
			return g.table([]string{"PATH", "UFS", "OPTIONS"}, rows)
		},
	}
}

func newMountRemoveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "rm PATH",
		Aliases: []string{"remove"},
		Short:   "Unmount a path (admin); cairn forgets the files it serves, their UFS copies stay",
		Long: `Unmount PATH. The files the mount serves leave the namespace (their copies
stay in the UFS; their cached copies become stale, for cleanup). It is
refused while any of them is not persisted (it would be lost), while a
write, an upload or the removal of a deleted file's copy uses the mount,
and while the async upload mapping sends files to it.`,
		Args: exactArgs(1, "a path"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, cancel, err := g.session(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			resp, err := client.Msg(ctx, c, func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.RemoveMountResponse], error) {
				return s.Namespace.RemoveMount(ctx, connect.NewRequest(&cairnv1.RemoveMountRequest{Path: args[0]}))
			})
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(resp)
			}
			fmt.Fprintf(g.out, "unmounted %s; %d files left the namespace (their UFS copies stay)\n", args[0], resp.GetForgotten())
			return nil
		},
	}
}

// describeMount is a mount's UFS for people.
func describeMount(m *cairnv1.Mount) string {
	switch {
	case m.GetCacheOnly():
		return "cache-only"
	case m.GetUri() != "":
		return m.GetUri()
	}
	return "file://" + m.GetUfsRoot()
}
