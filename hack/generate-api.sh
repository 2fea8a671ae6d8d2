#!/usr/bin/env bash
# Generates the Go code of the coordination API with the pinned buf and
# protoc plugins: generate-api.sh <tools-dir> <api-dir>. buf compiles the
# .proto files itself; no protoc is installed.
set -euo pipefail
tools=$(realpath "$1")
cd "$2"
find . -name '*.pb.go' -delete
PATH="${tools}:${PATH}" "${tools}/buf" generate
