// CoreDNS with only the plugins the local plane's cluster DNS uses.
//
// The stock binary links every plugin (cloud DNS providers, etcd, dnstap...),
// which triples the build on a 2-core machine; CoreDNS supports choosing the
// plugin set at compile time by setting dnsserver.Directives and importing the
// plugins, which is all this file does. The order below is the order of
// CoreDNS's own plugin.cfg: it is the order plugins see a query.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func init() {
	dnsserver.Directives = []string{
		"bind",
		"ready",
		"health",
		"errors",
		"log",
		"cache",
		"kubernetes",
	}
}

func main() {
	coremain.Run()
}
