// Command cairn is cairn's one binary: the master and worker processes, an
// embedded development cluster, and the client verbs operators use.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"connectrpc.com/connect"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot()
	if err := root.ExecuteContext(ctx); err != nil {
		var ce *connect.Error
		if errors.As(err, &ce) {
			fmt.Fprintf(os.Stderr, "cairn: %s: %s\n", ce.Code(), ce.Message())
			if strings.Contains(ce.Message(), "400 Bad Request") {
				fmt.Fprintln(os.Stderr, "cairn: (a master that serves TLS answers plain HTTP so: give --tls-ca)")
			}
		} else {
			fmt.Fprintf(os.Stderr, "cairn: %v\n", err)
		}
		os.Exit(exitCode(err))
	}
}

// exitCode maps an error to the process exit status: 2 for bad usage or
// input, 3 when the cluster could not be reached, 1 otherwise.
func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	switch connect.CodeOf(err) {
	case connect.CodeInvalidArgument, connect.CodeNotFound, connect.CodeFailedPrecondition:
		return 2
	case connect.CodeUnavailable, connect.CodeDeadlineExceeded:
		return 3
	}
	return 1
}

// usageError marks a mistake in the command line.
type usageError struct{ error }
