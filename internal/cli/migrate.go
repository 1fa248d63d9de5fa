package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newMigrateCommand(e *env) *cobra.Command {
	var dbURL string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Bring the database schema up to date",
		Long: `Apply every schema migration the database lacks. Safe to run from several
processes at once: on PostgreSQL they take turns on an advisory lock, and the
later ones find nothing left to do. SQLite databases also migrate whenever
Waymark opens them.`,
		Example: "  waymark migrate --db postgres://postgres@127.0.0.1:5432/waymark?sslmode=disable",
		Args:    noArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			s, err := openStore(ctx, dbURL, dbOptions{})
			if err != nil {
				return err
			}
			defer s.Close()
			applied, err := s.Migrate(ctx)
			if err != nil {
				return err
			}
			version, err := s.SchemaVersion(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "applied %d migration(s); schema version %d\n", applied, version)
			return nil
		},
	}
	cmd.Flags().StringVar(&dbURL, "db", defaultDB, "database URL: sqlite://PATH or postgres://…")
	return cmd
}
