package cli

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/definition"
	"github.com/waymarkdev/waymark/server"
)

func newDevCommand(e *env) *cobra.Command {
	var examples string
	flags := defaultServeConfig()
	var configFile string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Serve locally in insecure-dev mode with the examples deployed: the one-command start",
		Long: `Run the server on a loopback address in insecure-dev mode, on ./waymark.db, with
every definition of examples/ deployed, and print where it answers.

Insecure-dev mode checks no credentials: a request acts as the user named by
its X-Waymark-User header, with the roles of X-Waymark-Roles (comma-separated),
or as an anonymous admin without them. The task handlers the examples name
are simulated: each returns its input. Never use dev for anything but local
development; use waymark serve.`,
		Example: `  waymark dev
  waymark dev --addr 127.0.0.1:9090 --db sqlite:///tmp/scratch.db`,
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadServeConfig(cmd, e, configFile, flags)
			if err != nil {
				return err
			}
			cfg.InsecureDev = true
			if !server.IsLoopbackAddr(cfg.Addr) {
				return fmt.Errorf("--addr %q: dev serves on loopback addresses only (127.0.0.1, ::1, localhost)", cfg.Addr)
			}
			files, defs, err := readExamples(examples)
			if err != nil {
				return err
			}
			handlers := map[string]waymark.TaskHandler{}
			for _, def := range defs {
				for _, a := range def.Activities {
					if a.Type == definition.TypeTask {
						handlers[a.Handler] = echoHandler
					}
				}
			}
			return runServe(cmd.Context(), e, cfg, &serveHooks{
				handlers: handlers,
				ready: func(ctx context.Context, engine *waymark.Engine, addr net.Addr) error {
					return announceDev(ctx, e, engine, addr, files, handlers)
				},
			})
		},
	}
	addServeFlags(cmd, flags)
	cmd.Flags().StringVar(&configFile, "config", "", "YAML configuration file, as for serve (outbox sinks, cleanup, …)")
	cmd.Flags().StringVar(&examples, "examples", "examples", "directory of definitions to deploy (.yaml, .yml, .json)")
	return cmd
}

// readExamples reads and parses every definition file of dir. A missing
// directory is no error: dev serves without examples.
func readExamples(dir string) (files map[string][]byte, defs []*definition.Definition, err error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("--examples: %w", err)
	}
	files = map[string][]byte{}
	for _, ent := range entries {
		ext := strings.ToLower(filepath.Ext(ent.Name()))
		if ent.IsDir() || (ext != ".yaml" && ext != ".yml" && ext != ".json") {
			continue
		}
		path := filepath.Join(dir, ent.Name())
		src, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("--examples: %w", err)
		}
		def, err := definition.Parse(src)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		files[path] = src
		defs = append(defs, def)
	}
	return files, defs, nil
}

// announceDev deploys the examples and prints where the server answers.
func announceDev(ctx context.Context, e *env, engine *waymark.Engine, addr net.Addr, files map[string][]byte, handlers map[string]waymark.TaskHandler) error {
	base := "http://" + addr.String()
	out := e.stdout
	fmt.Fprintln(out, "Waymark dev server — INSECURE: no credentials are checked; loopback only")
	fmt.Fprintf(out, "  API:     %s/api/v1\n", base)
	fmt.Fprintf(out, "  OpenAPI: %s/api/v1/openapi.json\n", base)
	fmt.Fprintf(out, "  Health:  %s/healthz  %s/readyz\n", base, base)
	for _, path := range slices.Sorted(maps.Keys(files)) {
		rec, created, err := engine.Deploy(ctx, files[path])
		if err != nil {
			return fmt.Errorf("deploy %s: %w", path, err)
		}
		state := "already deployed"
		if created {
			state = "deployed"
		}
		fmt.Fprintf(out, "  %s %s v%d from %s\n", state, rec.ID, rec.Version, path)
	}
	if len(handlers) > 0 {
		fmt.Fprintf(out, "  simulated handlers (each returns its input): %s\n", strings.Join(slices.Sorted(maps.Keys(handlers)), ", "))
	}
	server := ""
	if base != defaultServer {
		server = " --server " + base
	}
	fmt.Fprintf(out, "Try:\n  go run ./cmd/waymark start hello --input '{\"name\":\"Ada\"}' --wait 10s%s\n"+
		"  curl -s -X POST '%s/api/v1/instances?wait=10s' -H 'Content-Type: application/json' \\\n"+
		"       -d '{\"definition\":\"hello\",\"input\":{\"name\":\"Ada\"}}'\n", server, base)
	return nil
}
