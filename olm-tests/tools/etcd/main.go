// Command etcd is the etcd server, built from the pinned
// go.etcd.io/etcd/server/v3 module. It mirrors go.etcd.io/etcd/server/v3's own
// main.go: all the work happens in etcdmain.Main.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
