package netns

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Every topology keeps all its state in one run directory,
//
//	<state dir>/nnt-<run id>/
//	    owner.json                 who made it (PID and process start time)
//	    netns/<name>               bind mounts pinning the namespaces
//	    nodes/<node>/net.d/        the node's CNI config dir
//	    nodes/<node>/host-local/   host-local's IPAM state for the node
//	    cni-cache/                 libcni's result cache
//
// so that a run that crashed (SIGKILL, a timeout, a panic in a goroutine)
// leaves one recognisable directory behind, which the next topology removes
// once its owner is gone.

const (
	runPrefix = "nnt-"
	ownerFile = "owner.json"
)

// defaultStateDir is used when neither Options.StateDir nor
// $NODENET_NETNS_DIR says otherwise.
const defaultStateDir = "/run/nodenet-test"

// owner identifies the process that owns a run directory. The start time
// (in clock ticks since boot, from /proc/<pid>/stat) tells a live owner from
// an unrelated process that got the same PID later.
type owner struct {
	PID     int       `json:"pid"`
	Start   uint64    `json:"start"`
	Created time.Time `json:"created"`
	Label   string    `json:"label,omitempty"` // the test that made it, for humans
}

func selfOwner(label string) (owner, error) {
	pid := os.Getpid()
	start, err := processStart(pid)
	if err != nil {
		return owner{}, err
	}
	return owner{PID: pid, Start: start, Created: time.Now().UTC(), Label: label}, nil
}

// alive reports whether the owner process still runs.
func (o owner) alive() bool {
	start, err := processStart(o.PID)
	return err == nil && start == o.Start
}

// processStart returns field 22 (starttime) of /proc/<pid>/stat.
func processStart(pid int) (uint64, error) {
	if pid <= 0 {
		return 0, fmt.Errorf("no process %d", pid)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatStart(string(b))
}

// parseStatStart extracts starttime from a /proc/<pid>/stat line. The
// command name (field 2) is in parentheses and may itself contain spaces
// and parentheses, so fields are counted from the last ')'.
func parseStatStart(stat string) (uint64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc/<pid>/stat")
	}
	fields := strings.Fields(stat[i+1:]) // fields[0] is field 3 (state)
	const startField = 22
	if len(fields) < startField-2 {
		return 0, errors.New("malformed /proc/<pid>/stat: too few fields")
	}
	return strconv.ParseUint(fields[startField-3], 10, 64)
}

// newRunID returns a short random run id ("a1b2c3").
func newRunID() (string, error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// createRunDir makes <stateDir>/nnt-<id> with its owner record. The record
// is written into a hidden directory that is then renamed into place, so a
// concurrent leftover sweep never sees a run directory without an owner.
func createRunDir(stateDir, id string, o owner) (string, error) {
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return "", err
	}
	dir := filepath.Join(stateDir, runPrefix+id)
	tmp := filepath.Join(stateDir, "."+runPrefix+id)
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, ownerFile), append(b, '\n'), 0o644); err != nil {
		_ = os.RemoveAll(tmp)
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		_ = os.RemoveAll(tmp)
		return "", err
	}
	return dir, nil
}

func readOwner(runDir string) (owner, error) {
	var o owner
	b, err := os.ReadFile(filepath.Join(runDir, ownerFile))
	if err != nil {
		return o, err
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return o, fmt.Errorf("%s: %w", filepath.Join(runDir, ownerFile), err)
	}
	return o, nil
}
