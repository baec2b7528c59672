package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"labctl/internal/atomicfile"
)

// Defaults and fixed values.
const (
	DefaultClusterDomain = "cluster.local"
	DefaultServiceCIDR   = "10.43.0.0/16"
	// CAValidity is how long a new CA is valid.
	CAValidity = 10 * 365 * 24 * time.Hour
	// LeafValidity is how long a new serving or client certificate is
	// valid (never past the CA).
	LeafValidity = 365 * 24 * time.Hour
	// RenewBefore is how close to its expiry a leaf certificate is issued
	// again.
	RenewBefore = 90 * 24 * time.Hour
	// backdate is how far before now certificates start to be valid, for
	// machines whose clocks are a little behind.
	backdate = time.Hour
)

// Subjects of the client certificates.
const (
	AdminUser             = "system:admin"
	MastersGroup          = "system:masters"
	ControllerManagerUser = "system:kube-controller-manager"
	SchedulerUser         = "system:kube-scheduler"
	KubeProxyUser         = "system:kube-proxy"
	NodeUserPrefix        = "system:node:"
	NodesGroup            = "system:nodes"
	// KubeletClientUser is the API server's user when it calls kubelets
	// (logs, exec, attach, port-forward, the node proxy), in MastersGroup.
	KubeletClientUser = "kube-apiserver-kubelet-client"
)

// File names in Config.Dir: each key pair NAME is NAME.crt and NAME.key.
const (
	CAName                = "server-ca"
	ServingName           = "serving-kube-apiserver"
	AdminName             = "client-admin"
	ControllerManagerName = "client-controller"
	SchedulerName         = "client-scheduler"
	KubeProxyName         = "client-kube-proxy"
	KubeletName           = "client-kubelet"
	KubeletClientName     = "kube-apiserver-kubelet-client"
	ServiceAccountKeyFile = "service.key"
	ServiceAccountPubFile = "service.pub"
)

// File modes.
const (
	dirMode  = fs.FileMode(0o700)
	keyMode  = fs.FileMode(0o600)
	certMode = fs.FileMode(0o644)
)

// Config says where the certificates live and what the serving certificate
// must be valid for. Zero values mean the defaults.
type Config struct {
	// Dir holds the files; required (the server uses
	// <data-dir>/server/tls). It is created with mode 0700.
	Dir string
	// NodeName is this machine's node name: a SAN of the serving
	// certificate and the kubelet client certificate's user (default "":
	// neither, and no client-kubelet files).
	NodeName string
	// ClusterDomain is the cluster's DNS domain, for the
	// kubernetes.default.svc.<domain> SAN (default cluster.local).
	ClusterDomain string
	// ServiceCIDR is the service range; its first address, the kubernetes
	// service's, is a SAN (default 10.43.0.0/16, so 10.43.0.1).
	ServiceCIDR netip.Prefix
	// IPs are more addresses the serving certificate must be valid for:
	// the node IPs, the advertise address; invalid and unspecified ones
	// are skipped (default none; 127.0.0.1 and ::1 are always in).
	IPs []netip.Addr
	// DNSNames are more names the serving certificate must be valid for,
	// as k3s's --tls-san (default none).
	DNSNames []string
	// Logger receives what Ensure creates and why (default: discarded).
	Logger *slog.Logger
	// Now tells the time, to decide what has expired (default time.Now).
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.ClusterDomain == "" {
		c.ClusterDomain = DefaultClusterDomain
	}
	if !c.ServiceCIDR.IsValid() {
		c.ServiceCIDR = netip.MustParsePrefix(DefaultServiceCIDR)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// KeyPair is a certificate and its private key, in memory and on disk.
type KeyPair struct {
	// Cert is the parsed certificate.
	Cert *x509.Certificate
	// Key is its private key.
	Key crypto.Signer
	// CertPEM and KeyPEM are the files' contents.
	CertPEM, KeyPEM []byte
	// CertFile and KeyFile are the files' paths.
	CertFile, KeyFile string
}

// TLSCertificate returns the pair for a tls.Config.
func (k KeyPair) TLSCertificate() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{k.Cert.Raw}, PrivateKey: k.Key, Leaf: k.Cert}
}

// PKI is the cluster's certificates and keys, as Ensure left them on disk.
type PKI struct {
	// CA is the cluster CA, which signed every certificate below.
	CA KeyPair
	// Serving is the API server's serving certificate.
	Serving KeyPair
	// Admin is system:admin in system:masters, for the admin kubeconfig.
	Admin KeyPair
	// ControllerManager is system:kube-controller-manager.
	ControllerManager KeyPair
	// Scheduler is system:kube-scheduler.
	Scheduler KeyPair
	// KubeProxy is system:kube-proxy.
	KubeProxy KeyPair
	// Kubelet is system:node:<node name> in system:nodes; zero when
	// Config.NodeName is empty.
	Kubelet KeyPair
	// KubeletClient is kube-apiserver-kubelet-client in system:masters:
	// the API server's certificate towards the kubelets.
	KubeletClient KeyPair
	// ServiceAccountKey signs service account tokens; its public half is
	// in ServiceAccountPubFile.
	ServiceAccountKey crypto.Signer
}

// CertPool returns a pool holding the CA, to verify the server or clients.
func (p *PKI) CertPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.CA.Cert)
	return pool
}

// Ensure loads the certificates and keys in cfg.Dir, creating or issuing
// again what is missing or no longer fit (see the package documentation).
func Ensure(cfg Config) (*PKI, error) {
	if cfg.Dir == "" {
		return nil, errors.New("no directory for the certificates given")
	}
	cfg = cfg.withDefaults()
	if err := os.MkdirAll(cfg.Dir, dirMode); err != nil {
		return nil, fmt.Errorf("create the certificate directory %q: %w", cfg.Dir, err)
	}
	// MkdirAll leaves an existing directory's mode alone; this one holds
	// the CA key.
	if err := os.Chmod(cfg.Dir, dirMode); err != nil {
		return nil, fmt.Errorf("restrict the certificate directory %q: %w", cfg.Dir, err)
	}
	i := issuer{cfg: cfg, log: cfg.Logger, now: cfg.Now()}

	ca, err := i.ensureCA()
	if err != nil {
		return nil, err
	}
	i.ca = ca
	p := &PKI{CA: ca}

	dnsNames, ips := ServingSANs(cfg)
	type leaf struct {
		dst  *KeyPair
		spec leafSpec
	}
	leaves := []leaf{
		{&p.Serving, leafSpec{name: ServingName, cn: "kube-apiserver", server: true, dnsNames: dnsNames, ips: ips}},
		{&p.Admin, leafSpec{name: AdminName, cn: AdminUser, orgs: []string{MastersGroup}}},
		{&p.ControllerManager, leafSpec{name: ControllerManagerName, cn: ControllerManagerUser}},
		{&p.Scheduler, leafSpec{name: SchedulerName, cn: SchedulerUser}},
		{&p.KubeProxy, leafSpec{name: KubeProxyName, cn: KubeProxyUser}},
		{&p.KubeletClient, leafSpec{name: KubeletClientName, cn: KubeletClientUser, orgs: []string{MastersGroup}}},
	}
	if cfg.NodeName != "" {
		leaves = append(leaves, leaf{&p.Kubelet, leafSpec{name: KubeletName, cn: NodeUserPrefix + cfg.NodeName, orgs: []string{NodesGroup}}})
	}
	for _, l := range leaves {
		if *l.dst, err = i.ensureLeaf(l.spec); err != nil {
			return nil, err
		}
	}

	if p.ServiceAccountKey, err = i.ensureServiceAccountKey(); err != nil {
		return nil, err
	}
	return p, nil
}

// ServingSANs returns the names and addresses the serving certificate must
// be valid for under cfg: localhost, the kubernetes service's names, the
// node name and cfg.DNSNames; the loopback addresses, the kubernetes
// service's address and cfg.IPs.
func ServingSANs(cfg Config) (dnsNames []string, ips []netip.Addr) {
	cfg = cfg.withDefaults()
	dnsNames = []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc." + cfg.ClusterDomain}
	if cfg.NodeName != "" {
		dnsNames = append(dnsNames, cfg.NodeName)
	}
	for _, n := range cfg.DNSNames {
		if n = strings.ToLower(n); n != "" && !slices.Contains(dnsNames, n) {
			dnsNames = append(dnsNames, n)
		}
	}
	candidates := append([]netip.Addr{
		netip.AddrFrom4([4]byte{127, 0, 0, 1}),
		netip.IPv6Loopback(),
		cfg.ServiceCIDR.Masked().Addr().Next(), // the kubernetes service
	}, cfg.IPs...)
	for _, a := range candidates {
		a = a.Unmap().WithZone("")
		if a.IsValid() && !a.IsUnspecified() && !slices.Contains(ips, a) {
			ips = append(ips, a)
		}
	}
	return dnsNames, ips
}

// issuer loads and issues the files of one Ensure call.
type issuer struct {
	cfg Config
	log *slog.Logger
	now time.Time
	ca  KeyPair
}

func (i *issuer) paths(name string) (certFile, keyFile string) {
	return filepath.Join(i.cfg.Dir, name+".crt"), filepath.Join(i.cfg.Dir, name+".key")
}

// ensureCA loads the CA, or creates it when its certificate does not exist.
func (i *issuer) ensureCA() (KeyPair, error) {
	certFile, keyFile := i.paths(CAName)
	certPEM, err := os.ReadFile(certFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return i.createCA(certFile, keyFile)
	case err != nil:
		return KeyPair{}, fmt.Errorf("read the CA certificate %q: %w", certFile, err)
	}
	refuse := func(format string, args ...any) (KeyPair, error) {
		return KeyPair{}, fmt.Errorf("%s; not creating a new CA, which would invalidate every certificate and kubeconfig issued from this one: "+
			"restore the CA's files, or remove both %q and %q to start a new cluster CA", fmt.Sprintf(format, args...), certFile, keyFile)
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		return refuse("CA certificate %q: %v", certFile, err)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return refuse("%q is not a CA certificate", certFile)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return refuse("CA certificate %q exists but its key cannot be read: %v", certFile, err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return refuse("CA key %q: %v", keyFile, err)
	}
	if !keyMatches(cert, key) {
		return refuse("CA key %q does not belong to the CA certificate %q", keyFile, certFile)
	}
	if left := cert.NotAfter.Sub(i.now); left < RenewBefore {
		i.log.Warn("the cluster CA expires soon; certificates it signs will stop working then",
			"file", certFile, "not_after", cert.NotAfter)
	}
	return KeyPair{Cert: cert, Key: key, CertPEM: certPEM, KeyPEM: keyPEM, CertFile: certFile, KeyFile: keyFile}, nil
}

func (i *issuer) createCA(certFile, keyFile string) (KeyPair, error) {
	key, keyPEM, err := newECKey()
	if err != nil {
		return KeyPair{}, fmt.Errorf("generate the CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return KeyPair{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: fmt.Sprintf("labctl-server-ca@%d", i.now.Unix())},
		NotBefore:             i.now.Add(-backdate),
		NotAfter:              i.now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return KeyPair{}, fmt.Errorf("create the CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return KeyPair{}, fmt.Errorf("parse the new CA certificate: %w", err)
	}
	certPEM := encodeCert(der)
	// The key first: a crash before the certificate is written leaves no
	// CA, and the next start creates one again.
	if err := atomicfile.Write(keyFile, keyPEM, keyMode); err != nil {
		return KeyPair{}, err
	}
	if err := atomicfile.Write(certFile, certPEM, certMode); err != nil {
		return KeyPair{}, err
	}
	i.log.Info("created the cluster CA", "file", certFile, "subject", cert.Subject.CommonName, "not_after", cert.NotAfter)
	return KeyPair{Cert: cert, Key: key, CertPEM: certPEM, KeyPEM: keyPEM, CertFile: certFile, KeyFile: keyFile}, nil
}

// leafSpec is a certificate that the CA issues.
type leafSpec struct {
	name     string // file name without extension
	cn       string
	orgs     []string
	server   bool // serving certificate, else client
	dnsNames []string
	ips      []netip.Addr
}

// ensureLeaf loads the leaf certificate spec names, or issues it when it
// is missing or no longer fit.
func (i *issuer) ensureLeaf(spec leafSpec) (KeyPair, error) {
	certFile, keyFile := i.paths(spec.name)
	kp, reason := i.loadLeaf(spec, certFile, keyFile)
	if reason == "" {
		return kp, nil
	}
	kp, err := i.issueLeaf(spec, certFile, keyFile)
	if err != nil {
		return KeyPair{}, err
	}
	i.log.Info("issued certificate", "file", certFile, "subject", spec.cn, "reason", reason, "not_after", kp.Cert.NotAfter)
	return kp, nil
}

// loadLeaf reads a leaf pair and checks it against spec; it returns why it
// must be issued again, or "".
func (i *issuer) loadLeaf(spec leafSpec, certFile, keyFile string) (KeyPair, string) {
	certPEM, err := os.ReadFile(certFile)
	if errors.Is(err, fs.ErrNotExist) {
		return KeyPair{}, "missing"
	} else if err != nil {
		return KeyPair{}, "unreadable: " + err.Error()
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		return KeyPair{}, "unreadable: " + err.Error()
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return KeyPair{}, "key unreadable: " + err.Error()
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return KeyPair{}, "key unreadable: " + err.Error()
	}
	usage := x509.ExtKeyUsageClientAuth
	if spec.server {
		usage = x509.ExtKeyUsageServerAuth
	}
	switch {
	case !keyMatches(cert, key):
		return KeyPair{}, "key does not match"
	case cert.CheckSignatureFrom(i.ca.Cert) != nil:
		return KeyPair{}, "not signed by the cluster CA"
	case cert.Subject.CommonName != spec.cn || !slices.Equal(cert.Subject.Organization, spec.orgs):
		return KeyPair{}, "subject changed"
	case !slices.Contains(cert.ExtKeyUsage, usage):
		return KeyPair{}, "wrong key usage"
	case i.now.Add(RenewBefore).After(cert.NotAfter):
		return KeyPair{}, "expires within 90 days"
	case !coversSANs(cert, spec.dnsNames, spec.ips):
		return KeyPair{}, "names or addresses changed"
	}
	return KeyPair{Cert: cert, Key: key, CertPEM: certPEM, KeyPEM: keyPEM, CertFile: certFile, KeyFile: keyFile}, ""
}

// coversSANs reports whether cert is valid for every name and address.
func coversSANs(cert *x509.Certificate, dnsNames []string, ips []netip.Addr) bool {
	for _, n := range dnsNames {
		if !slices.ContainsFunc(cert.DNSNames, func(have string) bool { return strings.EqualFold(have, n) }) {
			return false
		}
	}
	for _, want := range ips {
		if !slices.ContainsFunc(cert.IPAddresses, func(have net.IP) bool {
			a, ok := netip.AddrFromSlice(have)
			return ok && a.Unmap() == want
		}) {
			return false
		}
	}
	return true
}

func (i *issuer) issueLeaf(spec leafSpec, certFile, keyFile string) (KeyPair, error) {
	key, keyPEM, err := newECKey()
	if err != nil {
		return KeyPair{}, fmt.Errorf("generate the key for %q: %w", certFile, err)
	}
	serial, err := newSerial()
	if err != nil {
		return KeyPair{}, err
	}
	notAfter := i.now.Add(LeafValidity)
	if notAfter.After(i.ca.Cert.NotAfter) {
		notAfter = i.ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: spec.cn, Organization: spec.orgs},
		NotBefore:    i.now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if spec.server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = spec.dnsNames
		for _, a := range spec.ips {
			tmpl.IPAddresses = append(tmpl.IPAddresses, a.AsSlice())
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, i.ca.Cert, key.Public(), i.ca.Key)
	if err != nil {
		return KeyPair{}, fmt.Errorf("sign the certificate %q: %w", certFile, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return KeyPair{}, fmt.Errorf("parse the new certificate %q: %w", certFile, err)
	}
	certPEM := encodeCert(der)
	if err := atomicfile.Write(keyFile, keyPEM, keyMode); err != nil {
		return KeyPair{}, err
	}
	if err := atomicfile.Write(certFile, certPEM, certMode); err != nil {
		return KeyPair{}, err
	}
	return KeyPair{Cert: cert, Key: key, CertPEM: certPEM, KeyPEM: keyPEM, CertFile: certFile, KeyFile: keyFile}, nil
}

// ensureServiceAccountKey loads service.key, or creates it when missing,
// and makes service.pub hold its public half.
func (i *issuer) ensureServiceAccountKey() (crypto.Signer, error) {
	keyFile := filepath.Join(i.cfg.Dir, ServiceAccountKeyFile)
	pubFile := filepath.Join(i.cfg.Dir, ServiceAccountPubFile)
	var key crypto.Signer
	keyPEM, err := os.ReadFile(keyFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("generate the service account key: %w", err)
		}
		if keyPEM, err = encodeKey(rsaKey); err != nil {
			return nil, err
		}
		if err := atomicfile.Write(keyFile, keyPEM, keyMode); err != nil {
			return nil, err
		}
		i.log.Info("created the service account signing key", "file", keyFile)
		key = rsaKey
	case err != nil:
		return nil, fmt.Errorf("read the service account key %q: %w", keyFile, err)
	default:
		// Tokens already signed with it would all stop working: never
		// replace it behind the user's back.
		if key, err = parseKey(keyPEM); err != nil {
			return nil, fmt.Errorf("service account key %q: %w; restore it, or remove it to create a new one (existing service account tokens will stop working)", keyFile, err)
		}
	}

	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("encode the service account public key: %w", err)
	}
	pubPEM := pemEncode("PUBLIC KEY", pubDER)
	if have, err := os.ReadFile(pubFile); err != nil || string(have) != string(pubPEM) {
		if err := atomicfile.Write(pubFile, pubPEM, certMode); err != nil {
			return nil, err
		}
	}
	return key, nil
}

func newSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generate a certificate serial number: %w", err)
	}
	return serial.Add(serial, big.NewInt(1)), nil // never 0
}

func newECKey() (crypto.Signer, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return key, keyPEM, nil
}

// keyMatches reports whether key is the private half of cert's public key.
func keyMatches(cert *x509.Certificate, key crypto.Signer) bool {
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(key.Public())
}
