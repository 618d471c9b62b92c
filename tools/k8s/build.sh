#!/usr/bin/env bash
# tools/k8s/build.sh — builds the test Kubernetes control plane into
# .cache/k8s-v1.37.2/ at the repository root, unless it is there already:
# kube-apiserver, kube-controller-manager, kube-scheduler (Kubernetes
# v1.37.2), etcd v3.7.0 and kwok v0.8.0, all from the Go module proxy.
# The first build takes 15–18 minutes and about 2.7 GB of memory on two
# cores; internal/kubetest starts the cluster from these binaries.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
k8s=v1.37.2
kwok=v0.8.0
out="${RAMPART_K8S_BIN:-$root/.cache/k8s-$k8s}"
bins=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok)

have=1
for b in "${bins[@]}"; do [ -x "$out/$b" ] || have=0; done
if [ $have = 1 ]; then
  echo "k8s $k8s control plane: cached in $out"
  exit 0
fi

mkdir -p "$out"
tmp=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false"
minor=${k8s#v1.}; minor=${minor%%.*}
ver="k8s.io/component-base/version"
cver="k8s.io/client-go/pkg/version"
ldflags="-s -w"
for p in "$ver" "$cver"; do
  ldflags+=" -X $p.gitVersion=$k8s -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
done
echo "building Kubernetes $k8s and etcd v3.7.0 into $out (first time: about 15–18 minutes)"
(cd "$here" && go build -trimpath -ldflags "$ldflags" -o "$tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler \
  ./etcd)
echo "installing kwok $kwok"
GOBIN="$tmp" GOFLAGS=-buildvcs=false go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$kwok"
for b in "${bins[@]}"; do mv -f "$tmp/$b" "$out/$b"; done
echo "k8s $k8s control plane: built in $out"
