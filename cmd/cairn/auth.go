package main

import (
	"context"
	"fmt"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/auth"
	"github.com/cairnhq/cairn/client"
	cairnv1 "github.com/cairnhq/cairn/proto/cairn/v1"
)

func newAuthCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "auth",
		Short: "Tokens: create, list and revoke them; see which one you use",
		Long: `Every call to a cairn process carries a bearer token (authorization: Bearer
TOKEN); its role says what it may do: admin (everything, tokens and raft
membership too), operator (jobs, maintenance, clear-stale, free, settings,
file writes), writer (reads and file writes), reader (reads only), worker
(what a worker process needs). The journal keeps tokens as hashes: a token
is shown once, when it is made. See docs/security.md.`,
	}
	tokens := &cobra.Command{Use: "token", Short: "Create, list and revoke tokens (admin)"}
	tokens.AddCommand(newTokenCreateCmd(g), newTokenListCmd(g), newTokenRevokeCmd(g), newTokenNewCmd(g))
	cmd.AddCommand(tokens, newWhoAmICmd(g))
	return cmd
}

func newTokenCreateCmd(g *globals) *cobra.Command {
	var name, role string
	cmd := &cobra.Command{
		Use:   "create --name NAME --role ROLE",
		Short: "Make a token and print it (once: it is not kept anywhere)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := auth.ParseRole(role)
			if err != nil {
				return usageError{fmt.Errorf("--role: %w", err)}
			}
			c, ctx, cancel, err := g.session(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			// Not retried on another master: a retry after a lost answer
			// would make a second token, or refuse the name.
			resp, err := c.Masters()[0].Auth.CreateToken(ctx, connect.NewRequest(&cairnv1.CreateTokenRequest{Name: name, Role: r}))
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(resp.Msg)
			}
			fmt.Fprintln(g.out, resp.Msg.GetToken())
			fmt.Fprintf(cmd.ErrOrStderr(), "token %q (%s) made; this is the only time it is shown: keep it in a file (mode 0600) and pass --token-file\n", name, auth.RoleName(r))
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the token's name (letters, digits, '.', '_', '-'), shown in the journal as who made each call")
	cmd.Flags().StringVar(&role, "role", "", "admin, operator, writer, reader or worker")
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

func newTokenListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the tokens' names and roles (never the tokens)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ctx, cancel, err := g.session(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			resp, err := client.Msg(ctx, c, func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.ListTokensResponse], error) {
				return s.Auth.ListTokens(ctx, connect.NewRequest(&cairnv1.ListTokensRequest{}))
			})
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(resp)
			}
			var rows [][]string
			for _, t := range resp.GetTokens() {
				by := t.GetCreatedBy()
				if by == "" {
					by = "-" // given at bootstrap
				}
				rows = append(rows, []string{t.GetName(), auth.RoleName(t.GetRole()), fmtTime(t.GetCreatedTime()), by})
			}
			return g.table([]string{"NAME", "ROLE", "CREATED", "BY"}, rows)
		},
	}
}

func newTokenRevokeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a token: every master and worker refuses it from then on",
		Args:  exactArgs(1, "the token's name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ctx, cancel, err := g.session(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			if _, err := client.Msg(ctx, c, func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.RevokeTokenResponse], error) {
				return s.Auth.RevokeToken(ctx, connect.NewRequest(&cairnv1.RevokeTokenRequest{Name: args[0]}))
			}); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "token %s revoked\n", args[0])
			return nil
		},
	}
}

func newTokenNewCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "new",
		Short: "Print a fresh random token, for a file of initial tokens (talks to no master)",
		Long: `Print a fresh random token. Use it in a file of initial tokens given to the
first master (cairn master --bootstrap --initial-tokens FILE, one "NAME ROLE
TOKEN" per line), or in the token files of a deployment with no person at the
keyboard (compose, a Kubernetes Secret).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(g.out, auth.NewToken())
			return err
		},
	}
}

func newWhoAmICmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Name the token this command sends, and its role",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ctx, cancel, err := g.session(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			resp, err := client.Msg(ctx, c, func(ctx context.Context, s client.Services) (*connect.Response[cairnv1.WhoAmIResponse], error) {
				return s.Auth.WhoAmI(ctx, connect.NewRequest(&cairnv1.WhoAmIRequest{}))
			})
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(resp)
			}
			if resp.GetInsecure() {
				fmt.Fprintln(g.out, "the master runs with --insecure: it checks no token")
				return nil
			}
			fmt.Fprintf(g.out, "%s (%s)\n", resp.GetName(), auth.RoleName(resp.GetRole()))
			return nil
		},
	}
}
