package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/cairnhq/cairn/client"
	"github.com/cairnhq/cairn/jobs"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// jobKinds maps the CLI's kind names to job kinds.
var jobKinds = map[string]cairnv1.JobKind{
	"rebalance":   cairnv1.JobKind_JOB_KIND_REBALANCE,
	"cleanup":     cairnv1.JobKind_JOB_KIND_CLEANUP,
	"clear-stale": cairnv1.JobKind_JOB_KIND_CLEANUP,
	"free":        cairnv1.JobKind_JOB_KIND_FREE,
	"persist":     cairnv1.JobKind_JOB_KIND_PERSIST,
}

func parseKind(s string) (cairnv1.JobKind, error) {
	k, ok := jobKinds[strings.ToLower(s)]
	if !ok {
		return 0, usageError{fmt.Errorf("unknown job kind %q: want rebalance, cleanup (clear-stale), free or persist", s)}
	}
	return k, nil
}

func kindName(k cairnv1.JobKind) string { return strings.ToLower(shortEnum(k.String(), "JOB_KIND_")) }

func newJobCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "job",
		Short: "Start, stop, show and wait for jobs (rebalance, cleanup, free, persist)",
		Long: `Jobs are journaled: a job is split into tasks (one per worker, or one per
file for persist), workers lease the tasks, run them and report counters
back into the journal. A job and its figures survive the loss of any
master or worker.`,
	}
	cmd.AddCommand(newJobStartCmd(g), newJobStopCmd(g), newJobShowCmd(g), newJobWaitCmd(g), newJobSettingsCmd(g))
	return cmd
}

func newJobStartCmd(g *globals) *cobra.Command {
	var prefix, index string
	var force, wait bool
	var limit uint32
	var window time.Duration
	cmd := &cobra.Command{
		Use:   "start rebalance|cleanup|clear-stale|free",
		Short: "Start a job, or show the equal job that is already running",
		Long: `Start a job. Starting a job equal to a running one starts nothing and shows
the running one. Workers that get no task are listed with the reason.

  rebalance     send every cached file to its owners under the current map
  cleanup       remove stale copies: misplaced ones verified at an owner, and
                copies of deleted files or old versions (--prefix, --force)
  clear-stale   the seed's clear-stale: a cleanup of every worker (--force only),
                through JobService/ClearStale, whose answer names each worker
                still running an earlier one
  free          drop cached copies of persisted files (--prefix or --index)`,
		Args: exactArgs(1, "a job kind"),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, err := parseKind(args[0])
			if err != nil {
				return err
			}
			spec := &cairnv1.JobSpec{Kind: kind, Prefix: prefix, Force: force}
			if cmd.Flags().Changed("dont-cleanup-time") {
				if kind != cairnv1.JobKind_JOB_KIND_CLEANUP {
					return usageError{errors.New("--dont-cleanup-time applies to cleanup (clear-stale) only")}
				}
				if window < 0 {
					return usageError{fmt.Errorf("--dont-cleanup-time %s: give 0s or more", window)}
				}
				spec.DontCleanupTime = durationpb.New(window)
			}
			if index != "" {
				if spec.Paths, err = readIndex(index); err != nil {
					return err
				}
			}
			if kind == cairnv1.JobKind_JOB_KIND_FREE && prefix == "" && index == "" {
				return usageError{errors.New("free needs --prefix P or --index FILE: say what to free")}
			}
			clearStale := args[0] == "clear-stale"
			if clearStale && (prefix != "" || index != "" || cmd.Flags().Changed("dont-cleanup-time") || limit != 0) {
				return usageError{errors.New("clear-stale takes --force only (the seed's API); use cleanup for --prefix, --dont-cleanup-time or --delivery-limit")}
			}
			c, ctx, cancel, err := g.session(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			resp, err := client.Call(ctx, c, func(ctx context.Context, s client.Services) (*cairnv1.StartJobResponse, error) {
				if clearStale {
					r, err := s.Jobs.ClearStale(ctx, connect.NewRequest(&cairnv1.ClearStaleRequest{Force: force}))
					if err != nil {
						return nil, err
					}
					return &cairnv1.StartJobResponse{Job: r.Msg.GetJob(), Created: r.Msg.GetCreated(), Errors: r.Msg.GetErrors()}, nil
				}
				r, err := s.Jobs.StartJob(ctx, connect.NewRequest(&cairnv1.StartJobRequest{
					Spec: spec, DeliveryLimit: limit}))
				if err != nil {
					return nil, err
				}
				return r.Msg, nil
			})
			if err != nil {
				return err
			}
			if g.json && !wait {
				return g.printJSON(resp)
			}
			j := resp.GetJob()
			verb := "started"
			if !resp.GetCreated() {
				verb = "already running"
			}
			fmt.Fprintf(os.Stderr, "job %d (%s) %s: %d tasks\n", j.GetId(), kindName(j.GetSpec().GetKind()), verb, j.GetTasks())
			for w, e := range resp.GetErrors() {
				fmt.Fprintf(os.Stderr, "  %s: %s\n", w, e)
			}
			if !wait {
				fmt.Fprintln(g.out, j.GetId())
				return nil
			}
			return waitJob(cmd.Context(), g, c, j.GetId())
		},
	}
	cmd.Flags().StringVar(&prefix, "prefix", "", "cleanup, free: only files under this path")
	cmd.Flags().StringVar(&index, "index", "", "free: a file listing the paths to free, one per line")
	cmd.Flags().BoolVar(&force, "force", false, "cleanup: also remove a persisted file's copy whose owner was reached and holds a diverged copy (never inside the window, never when no owner answered)")
	cmd.Flags().DurationVar(&window, "dont-cleanup-time", 0, "cleanup: keep copies cached less than this long before the task started (default: the cluster setting cleanup.dont_cleanup_time, 2h unless changed)")
	cmd.Flags().Uint32Var(&limit, "delivery-limit", 0, "how many leases each task may use before it fails (default: the master's --delivery-limit)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the job to end, drawing its progress; the exit code says how it ended")
	return cmd
}

func newJobStopCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "stop ID|KIND",
		Short: "Stop a job by id, or every running job of a kind; stopping a job that is not running succeeds",
		Args:  exactArgs(1, "a job id or kind"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &cairnv1.StopJobRequest{Reason: "stopped from the CLI"}
			if id, err := strconv.ParseUint(args[0], 10, 64); err == nil {
				req.Id = id
			} else if req.Kind, err = parseKind(args[0]); err != nil {
				return usageError{fmt.Errorf("%q is neither a job id nor a kind", args[0])}
			}
			c, ctx, cancel, err := g.session(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			resp, err := client.Msg(ctx, c, func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.StopJobResponse], error) {
				return s.Jobs.StopJob(ctx, connect.NewRequest(req))
			})
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(resp)
			}
			fmt.Fprintf(g.out, "stopped %d running job(s)\n", resp.GetStopped())
			return nil
		},
	}
}

func getJob(ctx context.Context, c *client.Client, id uint64) (*cairnv1.GetJobResponse, error) {
	return client.Msg(ctx, c, func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.GetJobResponse], error) {
		return s.Jobs.GetJob(ctx, connect.NewRequest(&cairnv1.GetJobRequest{Id: id}))
	})
}

func newJobShowCmd(g *globals) *cobra.Command {
	var kind string
	var limit uint32
	cmd := &cobra.Command{
		Use:   "show [ID]",
		Short: "List jobs (newest first), or show one job with a row per task",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, cancel, err := g.session(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			if len(args) == 1 {
				id, err := strconv.ParseUint(args[0], 10, 64)
				if err != nil {
					return usageError{fmt.Errorf("job id %q is not a number", args[0])}
				}
				resp, err := getJob(ctx, c, id)
				if err != nil {
					return err
				}
				if g.json {
					return g.printJSON(resp)
				}
				return printJob(g, resp)
			}
			req := &cairnv1.ListJobsRequest{PageSize: limit}
			if kind != "" {
				if req.Kind, err = parseKind(kind); err != nil {
					return err
				}
			}
			resp, err := client.Msg(ctx, c, func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.ListJobsResponse], error) {
				return s.Jobs.ListJobs(ctx, connect.NewRequest(req))
			})
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(resp)
			}
			var rows [][]string
			for _, j := range resp.GetJobs() {
				rows = append(rows, []string{strconv.FormatUint(j.GetId(), 10), kindName(j.GetSpec().GetKind()), shortEnum(j.GetState().String(), "JOB_STATE_"),
					fmt.Sprintf("%d/%d", j.GetTasksDone(), j.GetTasks()), fmtTime(j.GetCreatedTime()), fmtTime(j.GetEndedTime()), j.GetRequestedBy(), j.GetReason()})
			}
			return g.table([]string{"ID", "KIND", "STATE", "TASKS DONE", "STARTED", "ENDED", "BY", "REASON"}, rows)
		},
	}
	cmd.Flags().StringVar(&kind, "kind", "", "list only jobs of this kind")
	cmd.Flags().Uint32Var(&limit, "limit", 50, "list at most this many jobs")
	return cmd
}

// printJob writes a job's summary and a row per task.
func printJob(g *globals, resp *cairnv1.GetJobResponse) error {
	j := resp.GetJob()
	fmt.Fprintf(g.out, "job %d  %s  %s  tasks %d/%d  started %s  ended %s\n", j.GetId(), kindName(j.GetSpec().GetKind()),
		shortEnum(j.GetState().String(), "JOB_STATE_"), j.GetTasksDone(), j.GetTasks(), fmtTime(j.GetCreatedTime()), fmtTime(j.GetEndedTime()))
	if j.GetSpec().GetEpoch() != 0 {
		fmt.Fprintf(g.out, "epoch %d\n", j.GetSpec().GetEpoch())
	}
	if w := j.GetSpec().GetDontCleanupTime(); w != nil {
		fmt.Fprintf(g.out, "dont_cleanup_time %s, force %t\n", w.AsDuration(), j.GetSpec().GetForce())
	}
	fmt.Fprintf(g.out, "started by %s", orDash(j.GetRequestedBy()))
	if j.GetStoppedBy() != "" {
		fmt.Fprintf(g.out, ", stopped by %s", j.GetStoppedBy())
	}
	fmt.Fprintln(g.out)
	if j.GetReason() != "" {
		fmt.Fprintf(g.out, "reason: %s\n", j.GetReason())
	}
	fmt.Fprintln(g.out)
	header := []string{"TASK", "WORKER", "STATE", "ATTEMPT", "SCANNED"}
	var cols func(c *cairnv1.Counters) []string
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	switch j.GetSpec().GetKind() {
	case cairnv1.JobKind_JOB_KIND_CLEANUP:
		header = append(header, "REMOVED", "RECLAIMED", "STALE VERSION", "DELETED", "FORCED", "KEPT RECENT", "KEPT PEER-MISSING", "KEPT DIVERGED", "KEPT UNVERIFIED")
		cols = func(c *cairnv1.Counters) []string {
			return []string{u(c.GetRemoved()), formatSize(c.GetReclaimedBytes()), u(c.GetStaleVersion()), u(c.GetDeleted()), u(c.GetForced()),
				u(c.GetKeptRecent()), u(c.GetKeptPeerMissing()), u(c.GetKeptDiverged()), u(c.GetKeptUnverified())}
		}
	case cairnv1.JobKind_JOB_KIND_FREE:
		header = append(header, "FREED", "SIZE FREED")
		cols = func(c *cairnv1.Counters) []string { return []string{u(c.GetFreed()), formatSize(c.GetFreedBytes())} }
	default:
		header = append(header, "SENT", "SIZE SENT", "RECV", "SIZE RECV")
		cols = func(c *cairnv1.Counters) []string {
			return []string{u(c.GetSent()), formatSize(c.GetSentBytes()), u(c.GetReceived()), formatSize(c.GetReceivedBytes())}
		}
	}
	header = append(header, "ERRORS", "LAST ERROR")
	var rows [][]string
	for _, t := range resp.GetTasks() {
		c := t.GetCounters()
		worker := t.GetWorkerId()
		if worker == "" {
			worker = "any:" + t.GetLeaseWorker()
		}
		row := []string{strconv.Itoa(int(t.GetIndex())), worker, shortEnum(t.GetState().String(), "TASK_STATE_"), strconv.Itoa(int(t.GetAttempt())), u(c.GetScanned())}
		row = append(append(row, cols(c)...), u(c.GetErrors()), t.GetLastError())
		rows = append(rows, row)
	}
	return g.table(header, rows)
}

func newJobWaitCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "wait ID",
		Short: "Draw a job's progress until it ends; exit 0 when it succeeded, 1 when it failed or was cancelled",
		Args:  exactArgs(1, "a job id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil {
				return usageError{fmt.Errorf("job id %q is not a number", args[0])}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			return waitJob(cmd.Context(), g, c, id)
		},
	}
}

func newJobSettingsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "settings [NAME VALUE]",
		Short: "Show the job controllers' settings, or change one (rebalance.enabled true|false, cleanup.auto true|false, cache.partial true|false, cleanup.dont_cleanup_time 2h, jobs.retention 24h)",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 0 && len(args) != 2 {
				return usageError{errors.New("give no arguments to show the settings, or NAME VALUE to change one")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, cancel, err := g.session(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			var set *cairnv1.Settings
			if len(args) == 2 {
				set, err = client.Call(ctx, c, func(ctx context.Context, s client.Services) (*cairnv1.Settings, error) {
					r, err := s.Jobs.UpdateSetting(ctx, connect.NewRequest(&cairnv1.UpdateSettingRequest{Name: args[0], Value: args[1]}))
					if err != nil {
						return nil, err
					}
					return r.Msg.GetSettings(), nil
				})
			} else {
				set, err = client.Call(ctx, c, func(ctx context.Context, s client.Services) (*cairnv1.Settings, error) {
					r, err := s.Jobs.GetSettings(ctx, connect.NewRequest(&cairnv1.GetSettingsRequest{}))
					if err != nil {
						return nil, err
					}
					return r.Msg.GetSettings(), nil
				})
			}
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(set)
			}
			return g.table([]string{"SETTING", "VALUE"}, [][]string{
				{"rebalance.enabled", strconv.FormatBool(set.GetRebalanceEnabled())},
				{"cleanup.auto", strconv.FormatBool(set.GetCleanupAuto())},
				{"cache.partial", strconv.FormatBool(set.GetPartialCaching())},
				{"cleanup.dont_cleanup_time", set.GetDontCleanupTime().AsDuration().String()},
				{"jobs.retention", set.GetJobRetention().AsDuration().String()},
			})
		},
	}
	return cmd
}

func newShowCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show job summaries in the shapes operators know",
	}
	var limit uint32
	reb := &cobra.Command{
		Use:   "rebalance",
		Short: "One row per rebalance (and cleanup) and worker: REB ID, NODE, OBJECTS RECV, SIZE RECV, OBJECTS SENT, SIZE SENT, REMOVED OBJECTS, REMOVED BYTES, START, END, STATE",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ctx, cancel, err := g.session(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			var jobs []*cairnv1.Job
			for _, k := range []cairnv1.JobKind{cairnv1.JobKind_JOB_KIND_REBALANCE, cairnv1.JobKind_JOB_KIND_CLEANUP} {
				list, err := client.Msg(ctx, c, func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.ListJobsResponse], error) {
					return s.Jobs.ListJobs(ctx, connect.NewRequest(&cairnv1.ListJobsRequest{Kind: k, PageSize: limit}))
				})
				if err != nil {
					return err
				}
				jobs = append(jobs, list.GetJobs()...)
			}
			slices.SortFunc(jobs, func(a, b *cairnv1.Job) int { return cmp.Compare(b.GetId(), a.GetId()) })
			var rows [][]string
			var all []*cairnv1.GetJobResponse
			for _, j := range jobs {
				resp, err := getJob(ctx, c, j.GetId())
				if connect.CodeOf(err) == connect.CodeNotFound {
					continue // pruned meanwhile
				}
				if err != nil {
					return err
				}
				all = append(all, resp)
				prefix := "g"
				if j.GetSpec().GetKind() == cairnv1.JobKind_JOB_KIND_CLEANUP {
					prefix = "c"
				}
				for _, t := range resp.GetTasks() {
					cn := t.GetCounters()
					rows = append(rows, []string{fmt.Sprintf("%s%d", prefix, j.GetId()), t.GetWorkerId(),
						strconv.FormatUint(cn.GetReceived(), 10), formatSize(cn.GetReceivedBytes()),
						strconv.FormatUint(cn.GetSent(), 10), formatSize(cn.GetSentBytes()),
						strconv.FormatUint(cn.GetRemoved(), 10), formatSize(cn.GetReclaimedBytes()),
						fmtTime(t.GetStartedTime()), fmtTime(t.GetEndedTime()), shortEnum(t.GetState().String(), "TASK_STATE_")})
				}
			}
			if g.json {
				return g.printJSON(all)
			}
			return g.table([]string{"REB ID", "NODE", "OBJECTS RECV", "SIZE RECV", "OBJECTS SENT", "SIZE SENT", "REMOVED OBJECTS", "REMOVED BYTES", "START", "END", "STATE"}, rows)
		},
	}
	reb.Flags().Uint32Var(&limit, "limit", 10, "show the newest N rebalances")
	cmd.AddCommand(reb)
	return cmd
}

// readIndex reads the paths listed in an index file (jobs.ParseIndex:
// one per line, blank lines and lines starting with # skipped).
func readIndex(file string) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, usageError{fmt.Errorf("--index: %w", err)}
	}
	defer f.Close()
	paths, err := jobs.ParseIndex(f)
	if err != nil {
		return nil, usageError{fmt.Errorf("--index %s: %w", file, err)}
	}
	return paths, nil
}

// orDash is s, or "-" when s is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
