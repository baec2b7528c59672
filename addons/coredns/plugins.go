package coredns

import (
	"fmt"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin"

	// The server type ("dns") and the plugins a cluster's Corefile uses,
	// named one by one (CoreDNS's own main links all of its ~60 plugins).
	_ "github.com/coredns/coredns/core/dnsserver"
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics" // the prometheus directive
	_ "github.com/coredns/coredns/plugin/ready"
)

// The reload directive. CoreDNS's reload plugin polls caddy's Corefile
// loaders, which read a file from disk; inside labctl there is none, so
// it would fall back to CoreDNS's built-in Corefile (whoami on every
// address) and restart the server with it. labctl reloads the Corefile
// itself as soon as the coredns ConfigMap changes, so the directive is
// accepted, with upstream's arguments and checks, and does nothing more.
func init() { plugin.Register("reload", setupReload) }

func setupReload(c *caddy.Controller) error {
	for n := 0; c.Next(); n++ {
		if n > 0 {
			return plugin.Error("reload", plugin.ErrOnce)
		}
		args := c.RemainingArgs()
		if len(args) > 2 {
			return plugin.Error("reload", c.ArgErr())
		}
		for i, a := range args {
			d, err := time.ParseDuration(a)
			if err != nil {
				return plugin.Error("reload", err)
			}
			if i == 0 && d < 2*time.Second {
				return plugin.Error("reload", fmt.Errorf("interval value must be greater or equal to %v", 2*time.Second))
			}
			if i == 1 && d != 0 && d < time.Second {
				return plugin.Error("reload", fmt.Errorf("jitter value must be 0 or greater or equal to %v", time.Second))
			}
		}
	}
	return nil
}
