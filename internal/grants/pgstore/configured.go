package pgstore

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/grants"
)

// OpenConfigured opens the grant store airlock.yaml's grants section
// names: the FileStore in grants.dir, or PostgreSQL with the DSN from the
// environment variable grants.postgres.dsn_env, migrating the schema
// first when migrate is set (airlock serve does: every replica may).
func OpenConfigured(ctx context.Context, cfg config.Grants, migrate bool, log *slog.Logger) (grants.Store, error) {
	switch cfg.Store {
	case config.GrantStoreFile, "":
		return grants.OpenFileStore(cfg.Dir, grants.FileStoreOptions{Logger: log})
	case config.GrantStorePostgres:
		dsn, err := cfg.PostgresDSN()
		if err != nil {
			return nil, err
		}
		s, err := Open(ctx, dsn, Options{Logger: log, Migrate: migrate, MaxConns: int32(cfg.Postgres.MaxConns)})
		if err != nil {
			return nil, fmt.Errorf("grants.store postgres (DSN from $%s): %w", cfg.Postgres.DSNEnv, err)
		}
		return s, nil
	default:
		return nil, fmt.Errorf("grants.store: %q is not one of file, postgres: %w", cfg.Store, grants.ErrInvalid)
	}
}

// MigrateConfigured runs the schema migrations of the store cfg names
// (PostgreSQL; the file store has none) and says what it did. With
// importDir set it then imports that file store's records into the
// (empty) PostgreSQL store: the file store must not be open elsewhere (its
// lock is taken), so stop the airlock using it first.
func MigrateConfigured(ctx context.Context, cfg config.Grants, importDir string) (string, error) {
	if cfg.Store != config.GrantStorePostgres {
		if importDir != "" {
			return "", fmt.Errorf("grants.store is %s: importing a file store needs grants.store: postgres: %w", cfg.Store, grants.ErrInvalid)
		}
		return fmt.Sprintf("grants.store is %s: nothing to migrate (only the postgres store has a schema)", cfg.Store), nil
	}
	dsn, err := cfg.PostgresDSN()
	if err != nil {
		return "", err
	}
	pcfg, err := ParseDSN(dsn)
	if err != nil {
		return "", fmt.Errorf("grants.postgres.dsn_env ($%s): %w", cfg.Postgres.DSNEnv, err)
	}
	pcfg.MaxConns = 1
	pool, err := newPool(ctx, pcfg)
	if err != nil {
		return "", err
	}
	defer pool.Close()
	from, to, err := Migrate(ctx, pool)
	if err != nil {
		return "", err
	}
	msg := fmt.Sprintf("grant store schema migrated from version %d to %d", from, to)
	if from == to {
		msg = fmt.Sprintf("grant store schema is at version %d: up to date", to)
	}
	if importDir == "" {
		return msg, nil
	}
	fs, err := grants.OpenFileStore(importDir, grants.FileStoreOptions{})
	if err != nil {
		return "", err
	}
	defer fs.Close()
	snap, err := fs.Load(ctx)
	if err != nil {
		return "", err
	}
	st := &Store{pool: pool}
	if err := st.Import(ctx, snap); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s; imported %d requests and %d grants from the file store in %s", msg, len(snap.Requests), len(snap.Grants), importDir), nil
}

// CheckEnvironment checks, without connecting, that the DSN of a postgres
// grant store is in its environment variable and parses (airlock
// validate, unless --skip-credentials). Its errors name the variable,
// never the DSN.
func CheckEnvironment(cfg config.Grants) error {
	if cfg.Store != config.GrantStorePostgres {
		return nil
	}
	dsn, err := cfg.PostgresDSN()
	if err != nil {
		return err
	}
	if _, err := ParseDSN(dsn); err != nil {
		return &config.FieldError{Path: "grants.postgres.dsn_env", Message: fmt.Sprintf("$%s: %v", cfg.Postgres.DSNEnv, err)}
	}
	return nil
}
