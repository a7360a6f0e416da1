package cmdutil

import (
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestIntersperse(t *testing.T) {
	app := &cli.App{
		Flags:    []cli.Flag{&cli.StringFlag{Name: "store"}, &cli.BoolFlag{Name: "json"}},
		Commands: []*cli.Command{{Name: "create", Flags: []cli.Flag{&cli.StringFlag{Name: "type"}, &cli.BoolFlag{Name: "force"}}}},
	}
	for in, want := range map[string]string{
		"x FILE --json":                   "x --json FILE",
		"x --store d create h --type hvm": "x --store d create --type hvm h",
		"x create h --force --type=pv":    "x create --force --type=pv h",
		"x create -- -h":                  "x create -- -h",
		"x --store d FILE":                "x --store d FILE",
	} {
		if got := strings.Join(Intersperse(app, strings.Fields(in)), " "); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}
