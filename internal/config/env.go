package config

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"
)

// EnvPrefix starts the environment variable of every flag: --node-name is
// also read from NODENET_NODE_NAME.
const EnvPrefix = "NODENET_"

// EnvName is the environment variable read for flag name.
func EnvName(flag string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// ApplyEnv sets every flag of fs that was not given on the command line from
// its environment variable, when that is set. Flags win over the environment,
// the environment over defaults. lookup is os.LookupEnv outside of tests.
func ApplyEnv(fs *pflag.FlagSet, lookup func(string) (string, bool)) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		v, ok := lookup(EnvName(f.Name))
		if !ok {
			return
		}
		if setErr := fs.Set(f.Name, v); setErr != nil {
			err = fmt.Errorf("%s=%q: %w", EnvName(f.Name), v, setErr)
		}
	})
	return err
}

// AnnotateUsage appends each flag's environment variable to its usage text,
// so `--help` documents both spellings.
func AnnotateUsage(fs *pflag.FlagSet) {
	fs.VisitAll(func(f *pflag.Flag) {
		if !strings.Contains(f.Usage, EnvPrefix) {
			f.Usage += " [$" + EnvName(f.Name) + "]"
		}
	})
}
