#!/usr/bin/env bash
# tools/vaultserver/build.sh — builds a real HashiCorp Vault server from the
# Go module proxy into .cache/vault-$VERSION/vault (reused when present), for
# the Transit keyring tests. Vault's go.mod replaces its api and sdk modules
# with directories of its own tree, which the module proxy serves as
# separate modules: a throwaway module requires Vault, takes the api and
# sdk versions Vault's go.mod names, and copies Vault's other replace lines.
# About 10 minutes of CPU on 2 cores the first time.
set -euo pipefail
VERSION=v1.21.4
root=$(cd "$(dirname "$0")/../.." && pwd)
out="$root/.cache/vault-$VERSION"
bin="$out/vault"
if [ -x "$bin" ] && "$bin" version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi
mkdir -p "$out/src"
export GOFLAGS=-mod=mod
src=$(go mod download -json "github.com/hashicorp/vault@$VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$src" ] || { echo "vault $VERSION source not downloaded" >&2; exit 1; }
gover=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$src/go.mod")
cd "$out/src"
cat >go.mod <<MOD
module rampart.local/vaultserver

go $gover

require github.com/hashicorp/vault $VERSION

replace (
	github.com/99designs/keyring => github.com/Jeffail/keyring v1.2.3
	github.com/ma314smith/signedxml v1.1.1 => github.com/moov-io/signedxml v1.1.1
)
MOD
cat >tools.go <<'GO'
//go:build tools

package tools

import _ "github.com/hashicorp/vault"
GO
# The module's own go.sum pins every dependency Vault was released with.
cp "$src/go.sum" go.sum
chmod u+w go.sum
go mod tidy -e >/dev/null 2>&1 || true
CGO_ENABLED=0 go build -trimpath -o "$bin.tmp" github.com/hashicorp/vault
mv "$bin.tmp" "$bin"
echo "$bin"
