// Command kube-apiserver is Kubernetes' own apiserver command, built from the
// pinned k8s.io/kubernetes module, plus an exit when the test process dies.
package main

import (
	"os"
	_ "time/tzdata"

	"github.com/twitter-keyguard/control-plane/internal/orphan"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	orphan.ExitWithParent()
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
