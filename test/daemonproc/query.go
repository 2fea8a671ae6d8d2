package daemonproc

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Query runs one of the daemon's query subcommands (`routerd routes`,
// `proxyd trace`, ...) with args and -o json on its run directory, and
// reads the answer into resp. Like Status, it talks to the unix socket
// from the test's own namespace.
func (d *Daemon) Query(ctx context.Context, resp proto.Message, args ...string) error {
	bin, _ := d.Binary()
	args = append(args, "-o", "json", "--run-dir="+d.runDir, "--timeout="+statusTimeout.String())
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%s %s on %s: %v (stderr %q)", d.name, strings.Join(args, " "), d.node.Name, err, stderr.Bytes())
	}
	if err := protojson.Unmarshal(out, resp); err != nil {
		return fmt.Errorf("%s %s on %s: %q: %w", d.name, strings.Join(args, " "), d.node.Name, out, err)
	}
	return nil
}
