package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/nodenet/nodenet/internal/config"
	"github.com/nodenet/nodenet/internal/logging"
	"github.com/nodenet/nodenet/internal/statuscmd"
	"github.com/nodenet/nodenet/internal/version"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
)

// Exit codes of Main.
const (
	ExitOK        = 0
	ExitFailure   = 1 // the command ran and failed (status: a daemon is unhealthy or unreachable)
	ExitUsage     = 2 // bad flags or configuration
	stopTimeout   = 30 * time.Second
	statusTimeout = 3 * time.Second
)

// Env is what Main needs from the process: arguments, environment, output.
type Env struct {
	Args      []string // without the program name
	LookupEnv func(string) (string, bool)
	Stdout    io.Writer
	Stderr    io.Writer
	Hostname  string
}

// OSEnv is the Env of the running process.
func OSEnv() Env {
	host, _ := os.Hostname()
	return Env{Args: os.Args[1:], LookupEnv: os.LookupEnv, Stdout: os.Stdout, Stderr: os.Stderr, Hostname: strings.ToLower(host)}
}

// Main runs the subcommand named by env.Args and returns the exit code; a
// daemon's main is os.Exit(daemon.Main(spec, daemon.OSEnv())).
func Main(spec Spec, env Env) int {
	cmd, args := "run", env.Args
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	switch cmd {
	case "run":
		return runCmd(ctx, spec, env, args)
	case "status":
		return statusCmd(ctx, spec, env, args)
	case "cleanup":
		return nodeCmd(ctx, spec, env, "cleanup", args, spec.Cleanup,
			"nothing to clean up: this version of the daemon programs nothing on the node", "cleaned up")
	case "prepare":
		return nodeCmd(ctx, spec, env, "prepare", args, spec.Prepare,
			"nothing to prepare: the daemon needs no kernel setting of the node", "prepared")
	case "version":
		return versionCmd(spec, env, args)
	case "help":
		usage(spec, env.Stdout)
		return ExitOK
	default:
		if c, ok := spec.Commands[cmd]; ok && c.Run != nil {
			return extraCmd(ctx, spec, env, cmd, c, args)
		}
		fmt.Fprintf(env.Stderr, "%s: unknown command %q\n", spec.Name, cmd)
		usage(spec, env.Stderr)
		return ExitUsage
	}
}

func usage(spec Spec, w io.Writer) {
	fmt.Fprintf(w, "Usage: %s [command] [flags]\n\nCommands:\n", spec.Name)
	fmt.Fprintf(w, "  run       run the daemon (default)\n")
	fmt.Fprintf(w, "  status    show the health and status of this node's nodenet daemons\n")
	fmt.Fprintf(w, "  cleanup   remove everything %s owns from this node\n", spec.Name)
	fmt.Fprintf(w, "  prepare   set the node's kernel settings %s relies on, and exit (a privileged init container)\n", spec.Name)
	fmt.Fprintf(w, "  version   print the version\n")
	names := slices.Sorted(maps.Keys(spec.Commands))
	for _, name := range names {
		fmt.Fprintf(w, "  %-9s %s\n", name, spec.Commands[name].Summary)
	}
	fmt.Fprintf(w, "\nRun '%s <command> --help' for its flags. Every flag is also read from NODENET_<FLAG> (e.g. NODENET_NODE_NAME).\n", spec.Name)
}

// parse parses args into fs (then the environment) and reports usage errors.
func parse(spec Spec, env Env, cmd string, fs *pflag.FlagSet, args []string) (ok bool, code int) {
	fs.SetOutput(env.Stderr)
	config.AnnotateUsage(fs)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: %s %s [flags]\n\nFlags:\n%s", spec.Name, cmd, fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return false, ExitOK
		}
		return false, ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "%s %s: unexpected arguments %v\n", spec.Name, cmd, fs.Args())
		return false, ExitUsage
	}
	if err := config.ApplyEnv(fs, env.LookupEnv); err != nil {
		fmt.Fprintf(env.Stderr, "%s %s: %v\n", spec.Name, cmd, err)
		return false, ExitUsage
	}
	return true, ExitOK
}

func runCmd(ctx context.Context, spec Spec, env Env, args []string) int {
	cfg := spec.defaults(env)
	fs := pflag.NewFlagSet(spec.Name+" run", pflag.ContinueOnError)
	cfg.Flags(fs)
	if spec.Flags != nil {
		spec.Flags(fs)
	}
	if ok, code := parse(spec, env, "run", fs, args); !ok {
		return code
	}
	if err := validate(spec, &cfg); err != nil {
		fmt.Fprintf(env.Stderr, "%s: invalid configuration:\n%v\n", spec.Name, err)
		return ExitUsage
	}
	log, err := logging.New(cfg.LogLevel, cfg.LogFormat, env.Stderr)
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s: %v\n", spec.Name, err)
		return ExitUsage
	}
	defer func() { _ = log.Sync() }()
	log = log.Named(spec.Name)

	d, err := New(spec, cfg, log)
	if err != nil {
		log.Error("cannot assemble the daemon", zap.Error(err))
		return ExitFailure
	}
	if err := d.Start(ctx); err != nil {
		log.Error("cannot start", zap.Error(err))
		return ExitFailure
	}
	<-ctx.Done()
	log.Info("signal received; stopping and leaving the datapath as it is")
	stopCtx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := d.Stop(stopCtx); err != nil {
		log.Error("unclean stop", zap.Error(err))
		return ExitFailure
	}
	return ExitOK
}

// validate checks the shared and the daemon's own configuration together.
func validate(spec Spec, cfg *config.Common) error {
	err := cfg.Validate()
	if spec.Validate != nil {
		err = errors.Join(err, spec.Validate())
	}
	return err
}

func statusCmd(ctx context.Context, spec Spec, env Env, args []string) int {
	cfg := spec.defaults(env)
	fs := pflag.NewFlagSet(spec.Name+" status", pflag.ContinueOnError)
	cfg.RunDirFlag(fs)
	daemons := fs.StringSlice("daemons", config.Daemons(), "daemons expected on this node (the chart sets the enabled ones)")
	output := fs.StringP("output", "o", "table", "output format: table or json")
	timeout := fs.Duration("timeout", statusTimeout, "time to wait for each daemon")
	if ok, code := parse(spec, env, "status", fs, args); !ok {
		return code
	}
	if *output != "table" && *output != "json" {
		fmt.Fprintf(env.Stderr, "%s status: --output %q: want table or json\n", spec.Name, *output)
		return ExitUsage
	}
	for _, d := range *daemons {
		if !slices.Contains(config.Daemons(), d) {
			fmt.Fprintf(env.Stderr, "%s status: unknown daemon %q\n", spec.Name, d)
			return ExitUsage
		}
	}
	reports := statuscmd.Query(ctx, cfg.RunDir, *daemons, *timeout)
	var err error
	if *output == "json" {
		err = statuscmd.WriteJSON(env.Stdout, reports)
	} else {
		err = statuscmd.WriteTable(env.Stdout, reports, time.Now())
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s status: %v\n", spec.Name, err)
		return ExitFailure
	}
	code := ExitOK
	for _, r := range reports {
		if !r.OK() {
			fmt.Fprintf(env.Stderr, "%s is %s: %s\n", r.Daemon, strings.ToLower(r.Health), r.Error)
			code = ExitFailure
		}
	}
	return code
}

// nodeCmd runs a one-shot subcommand on the node (cleanup, prepare): the
// daemon's flags, console logs, fn (nil: says none, and succeeds).
func nodeCmd(ctx context.Context, spec Spec, env Env, name string, args []string,
	fn func(context.Context, *zap.Logger, config.Common) error, none, done string) int {
	cfg := spec.defaults(env)
	fs := pflag.NewFlagSet(spec.Name+" "+name, pflag.ContinueOnError)
	cfg.Flags(fs)
	if spec.Flags != nil {
		spec.Flags(fs)
	}
	if ok, code := parse(spec, env, name, fs, args); !ok {
		return code
	}
	log, err := logging.New(cfg.LogLevel, "console", env.Stderr)
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s %s: %v\n", spec.Name, name, err)
		return ExitUsage
	}
	log = log.Named(spec.Name)
	if fn == nil {
		log.Info(none)
		return ExitOK
	}
	if err := fn(ctx, log, cfg); err != nil {
		log.Error(name+" failed", zap.Error(err))
		return ExitFailure
	}
	log.Info(done)
	return ExitOK
}

// extraCmd runs one of the daemon's own subcommands: its flags and
// --run-dir, parsed like the fixed commands'.
func extraCmd(ctx context.Context, spec Spec, env Env, name string, c Command, args []string) int {
	cfg := spec.defaults(env)
	fs := pflag.NewFlagSet(spec.Name+" "+name, pflag.ContinueOnError)
	cfg.RunDirFlag(fs)
	if c.Flags != nil {
		c.Flags(fs)
	}
	if ok, code := parse(spec, env, name, fs, args); !ok {
		return code
	}
	return c.Run(ctx, Invocation{Daemon: spec.Name, Socket: config.SocketPath(cfg.RunDir, spec.Name), RunDir: cfg.RunDir,
		Stdout: env.Stdout, Stderr: env.Stderr})
}

func versionCmd(spec Spec, env Env, args []string) int {
	fs := pflag.NewFlagSet(spec.Name+" version", pflag.ContinueOnError)
	output := fs.StringP("output", "o", "text", "output format: text or json")
	if ok, code := parse(spec, env, "version", fs, args); !ok {
		return code
	}
	info := version.Get()
	switch *output {
	case "json":
		b, _ := json.Marshal(struct {
			Daemon string `json:"daemon"`
			version.Info
		}{spec.Name, info})
		fmt.Fprintln(env.Stdout, string(b))
	case "text":
		fmt.Fprintf(env.Stdout, "%s %s\n", spec.Name, info)
	default:
		fmt.Fprintf(env.Stderr, "%s version: --output %q: want text or json\n", spec.Name, *output)
		return ExitUsage
	}
	return ExitOK
}

// defaults are the shared configuration's defaults for this daemon.
func (spec Spec) defaults(env Env) config.Common {
	cfg := config.DefaultCommon(spec.Name, spec.MetricsPort, env.Hostname)
	if spec.SyncMinInterval > 0 {
		cfg.SyncMinInterval = spec.SyncMinInterval
	}
	return cfg
}
