// Command etcd is the etcd server: go.etcd.io/etcd/server/v3 ships its entry point as the
// etcdmain package, not as a main package that `go install` could build.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
