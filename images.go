package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	ctrd "github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/urfave/cli/v2"

	"labctl/agent/containerd"
	"labctl/agent/images"
)

// imagesCommand is `labctl images import|ls|rm`: the images in labctl's
// containerd (namespace labctl), as the node's kubelet sees them.
func imagesCommand(cmds *commands) *cli.Command {
	addressFlag := func() cli.Flag {
		return &cli.StringFlag{Name: "address", Aliases: []string{"a"}, Value: containerd.DefaultAddress,
			Usage: "socket of labctl's containerd (or of the containerd given to the agent as --container-runtime-endpoint)"}
	}
	return &cli.Command{
		Name:  "images",
		Usage: "import, list and remove the images of this node's containerd",
		Subcommands: []*cli.Command{{
			Name:      "import",
			Usage:     "import image tarballs (OCI layout or docker save; .tar, .tar.gz, .tar.zst; - reads standard input)",
			ArgsUsage: "<file>...",
			Flags:     []cli.Flag{addressFlag()},
			Action:    cmds.imagesImport,
		}, {
			Name:    "ls",
			Aliases: []string{"list"},
			Usage:   "list the images",
			Flags: []cli.Flag{addressFlag(),
				&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print the names only"}},
			Action: cmds.imagesList,
		}, {
			Name:      "rm",
			Aliases:   []string{"remove", "rmi"},
			Usage:     "remove images by name or ID",
			ArgsUsage: "<image>...",
			Flags:     []cli.Flag{addressFlag()},
			Action:    cmds.imagesRemove,
		}},
		OnUsageError: usageError("images"),
	}
}

// imageManager connects to containerd at --address.
func imageManager(c *cli.Context) (*images.Manager, *ctrd.Client, error) {
	addr := containerd.EndpointAddress(c.String("address"))
	client, err := containerd.Dial(c.Context, addr)
	switch {
	case errors.Is(err, os.ErrPermission) || (err != nil && strings.Contains(err.Error(), "permission denied")):
		return nil, nil, fmt.Errorf("cannot reach containerd at %s: permission denied: run labctl as root", addr)
	case errors.Is(err, containerd.ErrNotServing):
		return nil, nil, fmt.Errorf("labctl's containerd is not running at %s: start labctl agent/server first (or point --address at a running containerd)", addr)
	case err != nil:
		return nil, nil, err
	}
	return images.New(client, images.Options{}), client, nil
}

func signalContext(c *cli.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
}

func (cmds *commands) imagesImport(c *cli.Context) error {
	if c.NArg() == 0 {
		return errors.New("images import: name at least one tarball (see: labctl images import --help)")
	}
	ctx, stop := signalContext(c)
	defer stop()
	m, client, err := imageManager(c)
	if err != nil {
		return fmt.Errorf("images import: %w", err)
	}
	defer client.Close()
	var failed []string
	for _, path := range c.Args().Slice() {
		var r io.ReadCloser = io.NopCloser(os.Stdin)
		source := "standard input"
		if path != "-" {
			f, err := os.Open(path)
			if err != nil {
				fmt.Fprintf(cmds.stderr, "labctl: %v\n", err)
				failed = append(failed, path)
				continue
			}
			r, source = f, path
		}
		imgs, err := m.Import(ctx, r, source)
		r.Close()
		for _, img := range imgs {
			fmt.Fprintf(cmds.stdout, "imported %s (%s, %s)\n", img.Name, shortID(img.ID), humanSize(img.Size))
		}
		if err != nil {
			fmt.Fprintf(cmds.stderr, "labctl: %v\n", err)
			failed = append(failed, path)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("images import: %d of %d files failed: %s", len(failed), c.NArg(), strings.Join(failed, ", "))
	}
	return nil
}

func (cmds *commands) imagesList(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("images ls: unexpected argument %q (see: labctl images ls --help)", c.Args().First())
	}
	ctx, stop := signalContext(c)
	defer stop()
	m, client, err := imageManager(c)
	if err != nil {
		return fmt.Errorf("images ls: %w", err)
	}
	defer client.Close()
	list, err := m.List(ctx)
	if err != nil {
		return fmt.Errorf("images ls: %w", err)
	}
	if c.Bool("quiet") {
		for _, img := range list {
			fmt.Fprintln(cmds.stdout, img.Name)
		}
		return nil
	}
	tw := tabwriter.NewWriter(cmds.stdout, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tIMAGE ID\tSIZE")
	for _, img := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", img.Name, shortID(img.ID), humanSize(img.Size))
	}
	return tw.Flush()
}

func (cmds *commands) imagesRemove(c *cli.Context) error {
	if c.NArg() == 0 {
		return errors.New("images rm: name at least one image (see: labctl images rm --help)")
	}
	ctx, stop := signalContext(c)
	defer stop()
	m, client, err := imageManager(c)
	if err != nil {
		return fmt.Errorf("images rm: %w", err)
	}
	defer client.Close()
	var failed []string
	for _, ref := range c.Args().Slice() {
		removed, err := m.Remove(ctx, ref)
		for _, name := range removed {
			fmt.Fprintf(cmds.stdout, "removed %s\n", name)
		}
		if err != nil {
			if errdefs.IsNotFound(err) {
				err = fmt.Errorf("image %q not found (see: labctl images ls)", ref)
			}
			fmt.Fprintf(cmds.stderr, "labctl: %v\n", err)
			failed = append(failed, ref)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("images rm: could not remove %s", strings.Join(failed, ", "))
	}
	return nil
}

// shortID is an image ID as crictl shows it: 13 hex digits.
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 13 {
		id = id[:13]
	}
	return id
}

// humanSize writes a size in decimal units, as crictl and docker do.
func humanSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%dB", n)
	}
	return fmt.Sprintf("%.3g%s", f, units[i])
}
