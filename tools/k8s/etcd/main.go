// Command etcd is etcd v3.7.0 (the version Kubernetes v1.37.2 pins), built
// from the Go module proxy for the test control plane: Debian's
// etcd-server is too old for this kube-apiserver.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
