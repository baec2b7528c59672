package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"labctl/server/join"
	"labctl/server/pki"
)

// tokenCommand is `labctl token`: the join token of the server on this
// machine, for `labctl agent --token` on the others.
func tokenCommand(cmds *commands) *cli.Command {
	return &cli.Command{
		Name:   "token",
		Usage:  "print the token that lets another machine join this server's cluster (labctl agent --token)",
		Flags:  []cli.Flag{configFlag(), dataDirFlag()},
		Before: cmds.loadConfigFile,
		Action: func(c *cli.Context) error {
			tok, err := readToken(c.String("data-dir"))
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmds.stdout, tok)
			return err
		},
		OnUsageError: usageError("token"),
	}
}

// readToken reads the server's join token from its data directory.
func readToken(dataDir string) (string, error) {
	secretFile := filepath.Join(dataDir, "server", "token")
	caFile := filepath.Join(dataDir, "server", "tls", pki.CAName+".crt")
	secret, err := os.ReadFile(secretFile)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("no join token in %s: start `labctl server` (with --data-dir %s) first", secretFile, dataDir)
	}
	if err != nil {
		return "", fmt.Errorf("read the join token: %w (run as root?)", err)
	}
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return "", fmt.Errorf("read the cluster CA: %w", err)
	}
	return join.Token{CAHash: join.CAHash(ca), Secret: strings.TrimSpace(string(secret))}.String(), nil
}
