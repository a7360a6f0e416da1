// Command xdomain manages the domains in the embedded store.
package main

import (
	"github.com/urfave/cli/v2"

	"github.com/xstream/xstream/internal/cmdutil"
)

func main() {
	cmdutil.Run(newApp())
}

func newApp() *cli.App {
	return &cli.App{
		Name:  "xdomain",
		Usage: "create, list, inspect and destroy domains in the xstream store",
		Description: `The store keeps each domain as a directory: a sparse memory file indexed
by pfn, the page types, the state records and the xl config. xsave reads
domains from it and xrestore writes them. On a Xen host, list also shows
Xen's own domains (--backend store: the store's alone, xen: Xen's alone);
the other commands work on the store.

` + cmdutil.ExitStatusHelp,
		Flags: []cli.Flag{cmdutil.StoreFlag(), cmdutil.BackendFlag()},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return cmdutil.Usagef("no command %q (want create, list, info, digest or destroy)", c.Args().First())
			}
			return cmdutil.Usagef("a command is needed: create, list, info, digest or destroy (xdomain --help)")
		},
		Commands: []*cli.Command{
			{
				Name:      "create",
				Usage:     "create a synthetic domain",
				ArgsUsage: "NAME",
				Description: `Creates a domain with generated memory and plausible vCPU and platform
records. --fill realistic mixes zero, repeated, text-like and random pages.`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "type", Value: "pv", Usage: "guest type: pv or hvm"},
					&cli.StringFlag{Name: "memory", Value: "64M", Usage: "guest memory `SIZE` (K, M, G suffixes)"},
					&cli.IntFlag{Name: "vcpus", Value: 1, Usage: "number of vCPUs"},
					&cli.StringFlag{Name: "fill", Value: "realistic", Usage: "page content: realistic, zero or random"},
					&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed of the generated content"},
					&cli.BoolFlag{Name: "force", Usage: "replace an existing domain of that name"},
				},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return cmdutil.Usagef("create needs exactly one NAME")
					}
					if err := cmdutil.AtLeastOne(c, "vcpus"); err != nil {
						return err
					}
					return create(c.String("store"), c.Args().First(), createOptions{
						typ: c.String("type"), memory: c.String("memory"), vcpus: c.Int("vcpus"),
						fill: c.String("fill"), seed: c.Int64("seed"), force: c.Bool("force"),
					})
				},
			},
			{
				Name:  "list",
				Usage: "list the stored domains, and on a Xen host Xen's domains beside them",
				Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "one JSON object per domain"}},
				Action: func(c *cli.Context) error {
					return list(c.String("store"), c.String("backend"), c.Bool("json"))
				},
			},
			{
				Name:      "info",
				Usage:     "show a domain",
				ArgsUsage: "NAME",
				Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "as JSON"}},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return cmdutil.Usagef("info needs exactly one NAME")
					}
					return info(c.String("store"), c.Args().First(), c.Bool("json"))
				},
			},
			{
				Name:      "digest",
				Usage:     "print a domain's content digest (the one xstream-cat --digest prints for its stream)",
				ArgsUsage: "NAME",
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return cmdutil.Usagef("digest needs exactly one NAME")
					}
					return digestCmd(c.String("store"), c.Args().First())
				},
			},
			{
				Name:      "destroy",
				Usage:     "remove a domain",
				ArgsUsage: "NAME",
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return cmdutil.Usagef("destroy needs exactly one NAME")
					}
					return destroy(c.String("store"), c.Args().First())
				},
			},
		},
	}
}
