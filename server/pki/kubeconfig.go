package pki

import (
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/runtime"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	clientcmdlatest "k8s.io/client-go/tools/clientcmd/api/latest"

	"labctl/internal/atomicfile"
)

// KubeconfigName is the name of the cluster, user and context in the
// kubeconfig files WriteKubeconfig writes, as in k3s's.
const KubeconfigName = "default"

// LocalServerURL returns the URL that a kubeconfig on the server's own
// machine uses: https://127.0.0.1:<port>, as k3s writes it, unless the
// server listens on one specific address only (bind), which is then used
// instead. bind may be the zero Addr.
func LocalServerURL(bind netip.Addr, port int) string {
	host := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	if bind.IsValid() && !bind.IsUnspecified() {
		host = bind.WithZone("")
	}
	return "https://" + netip.AddrPortFrom(host, uint16(port)).String()
}

// WriteKubeconfig writes a kubeconfig file to path, with the cluster,
// user and context all named "default": the API server at serverURL,
// trusted through caPEM, and the client certificate and key certPEM and
// keyPEM embedded. It creates the missing parent directories (mode 0755)
// and leaves the file with exactly mode (k3s's --write-kubeconfig-mode),
// replacing it atomically when it exists.
func WriteKubeconfig(path string, mode fs.FileMode, serverURL string, caPEM, certPEM, keyPEM []byte) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[KubeconfigName] = &clientcmdapi.Cluster{
		Server:                   serverURL,
		CertificateAuthorityData: caPEM,
	}
	cfg.AuthInfos[KubeconfigName] = &clientcmdapi.AuthInfo{
		ClientCertificateData: certPEM,
		ClientKeyData:         keyPEM,
	}
	cfg.Contexts[KubeconfigName] = &clientcmdapi.Context{
		Cluster:  KubeconfigName,
		AuthInfo: KubeconfigName,
	}
	cfg.CurrentContext = KubeconfigName
	// What clientcmd.Write does. Package clientcmd itself needs
	// github.com/spf13/pflag, which go.mod does not list yet.
	data, err := runtime.Encode(clientcmdlatest.Codec, cfg)
	if err != nil {
		return fmt.Errorf("encode the kubeconfig %q: %w", path, err)
	}
	if mode&^fs.ModePerm != 0 {
		return fmt.Errorf("kubeconfig %q: mode %#o has bits beyond the permissions", path, uint32(mode))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create the directory of the kubeconfig %q: %w", path, err)
	}
	return atomicfile.Write(path, data, mode)
}
