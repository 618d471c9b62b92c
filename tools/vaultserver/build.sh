#!/usr/bin/env bash
# tools/vaultserver/build.sh — builds a real HashiCorp Vault server from the
# Go module proxy into .cache/vault-$VERSION/vault (reused when present), for
# the Transit keyring tests. Vault's go.mod replaces its api and sdk modules
# with directories of its own tree, which the module proxy serves as
# separate modules (not inside Vault's zip): a throwaway module requires
# Vault, copies Vault's other replace lines, and pins api and sdk to the
# published versions Vault's go.mod names (so no plugin drags in a newer
# sdk). v1.19.0 builds this way (the default; about 60 minutes on the loaded
# 2-core machine, 2026-11-25). Later releases fail: their trees use an
# sdk between two published ones (v1.20.0 names sdk v0.18.0, which lacks
# pluginutil.PluginRunner.Download used by vault/plugincatalog, while
# v0.19.0 changed connutil.GetCloudSQLAuthOptions, which its mysql plugin
# calls with the old arguments); v1.21.4's go.mod names an sdk published
# from a later tree than its own.
# About 10 minutes of CPU on 2 cores the first time.
set -euo pipefail
VERSION=${VAULT_VERSION:-v1.19.0}
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
sdk=$(sed -n 's/^[[:space:]]*github.com\/hashicorp\/vault\/sdk \(v[^ ]*\).*$/\1/p' "$src/go.mod" | head -1)
sdk=${VAULT_SDK:-$sdk}
apiv=$(sed -n 's/^[[:space:]]*github.com\/hashicorp\/vault\/api \(v[^ ]*\).*$/\1/p' "$src/go.mod" | head -1)
cd "$out/src"
cat >go.mod <<MOD
module rampart.local/vaultserver

go $gover

require github.com/hashicorp/vault $VERSION

replace (
	github.com/hashicorp/vault/sdk => github.com/hashicorp/vault/sdk $sdk
	github.com/hashicorp/vault/api => github.com/hashicorp/vault/api $apiv
$(sed -n 's/^replace \(.* => [^.].*\)$/\t\1/p' "$src/go.mod")
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
