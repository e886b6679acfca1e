package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/cairnhq/cairn/client"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

// errJobEnded is how wait reports a job that did not succeed.
var errJobEnded = errors.New("the job did not succeed")

// How often a job's progress is shown: as a plain line when the output is
// not a terminal (a changed line, at most this often; the final line
// always), and by redrawing the bar on a terminal.
const (
	plainEvery = time.Second
	barEvery   = 100 * time.Millisecond
)

// waitJob follows WatchJob (from any master, moving on when one goes
// away) and draws the job's progress on stderr until the job ends: a bar
// when stderr is a terminal, plain lines otherwise, and the final line in
// both cases.
func waitJob(ctx context.Context, g *globals, c *client.Client, id uint64) error {
	var last *cairnv1.WatchJobResponse
	pr := newJobProgress(os.Stderr, term.IsTerminal(int(os.Stderr.Fd())))
	for {
		err := c.Do(ctx, func(ctx context.Context, s client.Services) error {
			stream, err := s.Jobs.WatchJob(ctx, connect.NewRequest(&cairnv1.WatchJobRequest{Id: id}))
			if err != nil {
				return err
			}
			defer stream.Close()
			for stream.Receive() {
				last = stream.Msg()
				pr.update(last.GetJob())
			}
			return stream.Err()
		})
		if last != nil && last.GetJob().GetState() != cairnv1.JobState_JOB_STATE_RUNNING {
			break
		}
		if err != nil && !client.Retryable(err) {
			pr.stop(nil)
			return err
		}
		select {
		case <-ctx.Done():
			pr.stop(nil)
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	pr.stop(last.GetJob())
	if g.json {
		if err := g.printJSON(last); err != nil {
			return err
		}
	}
	j := last.GetJob()
	if j.GetState() != cairnv1.JobState_JOB_STATE_SUCCEEDED {
		return fmt.Errorf("%w: job %d is %s: %s", errJobEnded, j.GetId(), shortEnum(j.GetState().String(), "JOB_STATE_"), j.GetReason())
	}
	return nil
}

// jobProgress shows one job's progress on w: on a terminal a progress bar
// of the tasks done with the figures after it,
//
//	25% [=====>                  ] (1/4) tasks of job 3 rebalance: scanned 300, sent 120 (40.0 MiB), ..., ETA 40s
//
// and plain lines (progressLine) otherwise.
type jobProgress struct {
	w   io.Writer
	tty bool
	now func() time.Time
	bar *progressbar.ProgressBar // on a terminal, once the job is known

	lastLine string
	lastAt   time.Time
}

func newJobProgress(w io.Writer, tty bool) *jobProgress {
	return &jobProgress{w: w, tty: tty, now: time.Now}
}

// update shows the job's newest state.
func (p *jobProgress) update(j *cairnv1.Job) {
	now := p.now()
	if !p.tty {
		line := progressLine(j, now)
		if line != p.lastLine && now.Sub(p.lastAt) >= plainEvery {
			fmt.Fprintln(p.w, line)
			p.lastLine, p.lastAt = line, now
		}
		return
	}
	if p.bar != nil && now.Sub(p.lastAt) < barEvery {
		return
	}
	p.lastAt = now
	if p.bar == nil {
		p.bar = progressbar.NewOptions64(int64(max(j.GetTasks(), 1)),
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetWidth(24),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionShowDescriptionAtLineEnd(),
			progressbar.OptionSetTheme(progressbar.ThemeASCII))
	}
	if n := int64(max(j.GetTasks(), 1)); p.bar.GetMax64() != n {
		p.bar.ChangeMax64(n)
	}
	// Each draws the bar (the library's own throttle is off).
	_ = p.bar.Set64(int64(j.GetTasksDone()))
	p.bar.Describe(fmt.Sprintf("tasks of job %d %s: %s", j.GetId(), kindName(j.GetSpec().GetKind()), progressFigures(j, now)))
}

// stop ends the display: the bar is cleared and, when the job is known
// (j not nil), its final line printed, unless that very line was the last
// one printed.
func (p *jobProgress) stop(j *cairnv1.Job) {
	if p.bar != nil {
		_ = p.bar.Exit()
		// Back to the line's start and erase it (the library's Clear does
		// not once the bar is full).
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	if j == nil {
		return
	}
	if line := progressLine(j, p.now()); line != p.lastLine {
		fmt.Fprintln(p.w, line)
		p.lastLine = line
	}
}

// progressLine is one plain line of a job's progress at now, e.g.
//
//	job 12 rebalance RUNNING: tasks 1/3, scanned 300, sent 120 (4.1 MiB), received 118 (4.0 MiB), 1.3 MiB/s, ETA 4s
func progressLine(j *cairnv1.Job, now time.Time) string {
	return fmt.Sprintf("job %d %s %s: tasks %d/%d, %s", j.GetId(), kindName(j.GetSpec().GetKind()),
		shortEnum(j.GetState().String(), "JOB_STATE_"), j.GetTasksDone(), j.GetTasks(), progressFigures(j, now))
}

// progressFigures are a job's counters as people read them: files scanned,
// what the job did to files (by kind) and with how many bytes, the rate of
// those bytes over the job's life, and then an estimate of the time left
// (from the share of tasks done) while it runs, or how long it took.
func progressFigures(j *cairnv1.Job, now time.Time) string {
	cn := j.GetCounters()
	parts := []string{fmt.Sprintf("scanned %d", cn.GetScanned())}
	var moved uint64 // the bytes the job's work is measured in
	switch j.GetSpec().GetKind() {
	case cairnv1.JobKind_JOB_KIND_CLEANUP:
		moved = cn.GetReclaimedBytes()
		parts = append(parts, fmt.Sprintf("removed %d (%s)", cn.GetRemoved(), formatSize(moved)),
			fmt.Sprintf("kept %d", cn.GetKeptRecent()+cn.GetKeptPeerMissing()+cn.GetKeptDiverged()+cn.GetKeptUnverified()))
	case cairnv1.JobKind_JOB_KIND_FREE:
		moved = cn.GetFreedBytes()
		parts = append(parts, fmt.Sprintf("freed %d (%s)", cn.GetFreed(), formatSize(moved)))
	case cairnv1.JobKind_JOB_KIND_PERSIST:
		moved = cn.GetUploadedBytes()
		parts = append(parts, fmt.Sprintf("uploaded %d (%s)", cn.GetUploaded(), formatSize(moved)))
	default:
		moved = cn.GetSentBytes()
		parts = append(parts, fmt.Sprintf("sent %d (%s)", cn.GetSent(), formatSize(moved)),
			fmt.Sprintf("received %d (%s)", cn.GetReceived(), formatSize(cn.GetReceivedBytes())))
	}
	if cn.GetErrors() > 0 {
		parts = append(parts, fmt.Sprintf("errors %d", cn.GetErrors()))
	}
	running := j.GetState() == cairnv1.JobState_JOB_STATE_RUNNING
	end := now
	if !running && j.GetEndedTime() != nil {
		end = j.GetEndedTime().AsTime()
	}
	var took time.Duration
	if j.GetCreatedTime() != nil {
		took = max(end.Sub(j.GetCreatedTime().AsTime()), 0)
	}
	if took > 0 {
		parts = append(parts, formatSize(uint64(float64(moved)/took.Seconds()))+"/s")
	}
	switch done, all := j.GetTasksDone(), j.GetTasks(); {
	case !running:
		parts = append(parts, "took "+roundDuration(took))
	case done == 0 || took == 0:
		parts = append(parts, "ETA ?")
	default:
		left := time.Duration(float64(took) * float64(all-min(done, all)) / float64(done))
		parts = append(parts, "ETA "+roundDuration(left))
	}
	return strings.Join(parts, ", ")
}

// roundDuration is d to the second (to the tenth below ten seconds), as
// Duration.String writes it.
func roundDuration(d time.Duration) string {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}
