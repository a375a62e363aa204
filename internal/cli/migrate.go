package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/grants/pgstore"
)

func migrateCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "migrate --config airlock.yaml [--import-file-store DIR]",
		Short:   "bring the shared grant store's schema (grants.store: postgres) up to date, then exit",
		Long:    "migrate runs the grant store's forward-only schema migrations under an advisory lock: safe to run from every replica at once, and ahead of a rolling upgrade. serve also runs them at start.",
		GroupID: groupServer,
		Args:    noArgs,
	}
	path := configFlag(cmd.Flags())
	timeout := cmd.Flags().Duration("timeout", 5*time.Minute, "give up after this long (waiting for another replica's migration included)")
	importDir := cmd.Flags().String("import-file-store", "", "then copy the requests and grants of this file store directory (grants.dir of the one-node airlock, stopped) into the empty PostgreSQL store")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return cmdMigrate(cmd.Context(), env.Stdout, *path, *importDir, *timeout)
	}
	return cmd
}

func cmdMigrate(ctx context.Context, stdout io.Writer, path, importDir string, timeout time.Duration) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	msg, err := pgstore.MigrateConfigured(ctx, cfg.Grants, importDir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s\n", path, msg)
	return nil
}
