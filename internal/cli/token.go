package cli

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/waymarkdev/waymark/server"
)

func newTokenCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Make API keys for waymark serve",
		Long: `The server keeps API keys only as SHA-256 hashes: put the hash in the
auth.apiKeys of its configuration and give the key itself to the client.`,
		Args: noArgs(),
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "new",
		Short: "Print a new random API key and its hash",
		Args:  noArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw := make([]byte, 32)
			if _, err := rand.Read(raw); err != nil {
				return fmt.Errorf("random key: %w", err)
			}
			key := "wmk_" + base64.RawURLEncoding.EncodeToString(raw)
			fmt.Fprintf(e.stdout, "key:  %s\nhash: %s\n", key, server.HashAPIKey(key))
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "hash [KEY]",
		Short: "Print the hash of an API key (read from standard input without KEY)",
		Example: `  waymark token hash "$WAYMARK_KEY"
  printf %s "$WAYMARK_KEY" | waymark token hash`,
		Args: argsRange(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var key string
			if len(args) == 1 {
				key = args[0]
			} else {
				line, err := bufio.NewReader(e.stdin).ReadString('\n')
				if err != nil && line == "" {
					return fmt.Errorf("read the key from standard input: %w", err)
				}
				key = strings.TrimRight(line, "\r\n")
			}
			if key == "" {
				return errors.New("the key is empty")
			}
			fmt.Fprintln(e.stdout, server.HashAPIKey(key))
			return nil
		},
	})
	return cmd
}
