package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/cairnhq/cairn/apiserver"
	"github.com/cairnhq/cairn/auth"
	"github.com/cairnhq/cairn/client"
)

// globals are the flags every client verb shares.
type globals struct {
	masters   string
	token     string
	tokenFile string
	tls       apiserver.TLSFiles
	stale     bool
	staleAny  bool
	json      bool
	timeout   time.Duration
	logLevel  string
	logFormat logFormat
	out       io.Writer
}

func newRoot() *cobra.Command {
	g := &globals{out: os.Stdout}
	root := &cobra.Command{
		Use:   "cairn",
		Short: "cairn keeps a distributed cache healthy",
		Long: `cairn keeps a distributed cache healthy: a Raft-replicated journal on a few
masters records the cluster map, file metadata and jobs; workers cache file
data and run the jobs.

Processes:   cairn master | cairn worker | cairn dev
Client verbs find the masters from --masters or CAIRN_MASTERS (default ` + client.DefaultMasters + `);
they print tables for people and JSON with --json.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	def := os.Getenv("CAIRN_MASTERS")
	if def == "" {
		def = client.DefaultMasters
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.masters, "masters", def, "masters' API addresses, comma-separated (env CAIRN_MASTERS)")
	pf.StringVar(&g.token, "token", os.Getenv("CAIRN_TOKEN"), "the token client verbs send (env CAIRN_TOKEN); prefer --token-file, which keeps it out of the process list")
	pf.StringVar(&g.tokenFile, "token-file", "", "a file holding the token client verbs send (and a worker or a joining master uses)")
	pf.StringVar(&g.tls.CA, "tls-ca", "", "the CA certificate (PEM) the cluster's certificates chain to: clients trust servers it signed; with it, client verbs speak TLS")
	pf.StringVar(&g.tls.Cert, "tls-cert", "", "this process's certificate (PEM): a master's or worker's to serve with TLS, and any process's client certificate under mutual TLS")
	pf.StringVar(&g.tls.Key, "tls-key", "", "the key (PEM) of --tls-cert")
	pf.BoolVar(&g.tls.ClientAuth, "tls-client-auth", false, "masters and workers require client certificates signed by --tls-ca (mutual TLS)")
	pf.BoolVar(&g.json, "json", false, "print JSON instead of tables (for scripts)")
	pf.DurationVar(&g.timeout, "timeout", 30*time.Second, "give up on a client call after this long")
	pf.StringVar(&g.logLevel, "log-level", "info", "log level of server processes: debug, info, warn, error")
	pf.Var(&g.logFormat, "log-format", "how server processes write their log to stderr: text (key=value lines for people), json (one object a line, for collectors), or auto: text on a terminal, json otherwise")
	pf.BoolVar(&g.stale, "stale", false, "let reads come from the answering master's own state, which may be a little behind the leader (default: linearizable reads); refused by a master that has heard from no leader for a while")
	pf.BoolVar(&g.staleAny, "stale-any", false, "like --stale, but also from a master cut off from the leader, however old its state")
	root.AddCommand(newMasterCmd(g), newWorkerCmd(g), newDevCmd(g), newClusterCmd(g), newFsCmd(g), newOperatorCmd(g), newEventsCmd(g), newJobCmd(g), newShowCmd(g), newAuthCmd(g), newMountCmd(g))
	return root
}

// logger builds the logger server processes write to stderr, in the
// format --log-format chooses.
func (g *globals) logger() (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", g.logLevel)}
	}
	return newLogger(os.Stderr, g.logFormat.resolve(term.IsTerminal(int(os.Stderr.Fd()))), lvl), nil
}

// client connects to the masters named by --masters.
func (g *globals) client() (*client.Client, error) {
	addrs, err := client.ParseMasters(g.masters)
	if err != nil {
		return nil, usageError{err}
	}
	token, err := g.clientToken()
	if err != nil {
		return nil, err
	}
	opts := []client.Option{client.WithRetryBudget(min(g.timeout, 15*time.Second)), client.WithToken(token)}
	if g.tls.Enabled() {
		cfg, err := g.tls.Client()
		if err != nil {
			return nil, usageError{err}
		}
		opts = append(opts, client.WithTLS(cfg))
	}
	switch {
	case g.staleAny:
		opts = append(opts, client.WithConsistency(client.StaleAny))
	case g.stale:
		opts = append(opts, client.WithConsistency(client.Stale))
	}
	return client.New(addrs, opts...), nil
}

// session is client and callCtx together, what most client verbs start
// with; cancel is nil when err is not.
func (g *globals) session(cmd *cobra.Command) (*client.Client, context.Context, context.CancelFunc, error) {
	c, err := g.client()
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := g.callCtx(cmd)
	return c, ctx, cancel, nil
}

// callCtx bounds one client verb by --timeout.
func (g *globals) callCtx(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), g.timeout)
}

// printJSON writes a protobuf message as JSON (field names as in the
// proto, enums by name), or any other value with encoding/json.
func (g *globals) printJSON(v any) error {
	if m, ok := v.(proto.Message); ok {
		b, err := protojson.MarshalOptions{Multiline: true, Indent: "  ", UseProtoNames: true, EmitUnpopulated: true}.Marshal(m)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(g.out, string(b))
		return err
	}
	enc := json.NewEncoder(g.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes rows with aligned columns under an upper-case header.
func (g *globals) table(header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(g.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// exactArgs is cobra.ExactArgs with an error that says what is missing.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s needs %s (got %d arguments); see --help", cmd.CommandPath(), what, len(args))}
		}
		return nil
	}
}

// clientToken is the token from --token-file, else --token (or
// CAIRN_TOKEN); "" when none is given.
func (g *globals) clientToken() (string, error) {
	if g.tokenFile != "" {
		t, err := auth.ReadTokenFile(g.tokenFile)
		if err != nil {
			return "", usageError{fmt.Errorf("--token-file: %w", err)}
		}
		return t, nil
	}
	return strings.TrimSpace(g.token), nil
}
