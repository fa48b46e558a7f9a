// Command vcsim serves govmomi's simulated vCenter (the VPX model: one datacenter, hosts, a cluster,
// datastores and four VMs) over HTTPS on a loopback port, for the vSphere adapter's tests.
//
// It prints one line, `VCSIM_URL=https://127.0.0.1:<port>/sdk`, once the server accepts connections,
// and runs until it is signalled or, with -exit-on-stdin-eof, until its standard input closes (so a
// test that dies takes its simulator with it). Only the given user and password may log in. With
// -template NAME, that VM of the model is powered off and marked as a template before serving.
//
// The server presents a certificate for 127.0.0.1, ::1 and localhost issued by a CA made at start
// (both ECDSA P-256, sent as a chain), as a VMCA-signed vCenter would: the simulator's built-in test
// certificate has a 1024-bit RSA key, which modern TLS clients refuse.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// serverCertificate makes a CA and a server certificate it signs, valid for a year.
func serverCertificate() (tls.Certificate, error) {
	notBefore := time.Now().Add(-time.Hour)
	notAfter := notBefore.Add(365 * 24 * time.Hour)

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	caTemplate := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "vcsim test CA", Organization: []string{"mtv-tests"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return tls.Certificate{}, err
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1", Organization: []string{"mtv-tests"}},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key}, nil
}

// markAsTemplate powers a VM of the model off and marks it as a template, as MarkAsTemplate would.
func markAsTemplate(name string) error {
	for _, entity := range simulator.Map.All("VirtualMachine") {
		vm, ok := entity.(*simulator.VirtualMachine)
		if !ok || vm.Name != name {
			continue
		}
		vm.Runtime.PowerState = types.VirtualMachinePowerStatePoweredOff
		vm.Summary.Runtime.PowerState = types.VirtualMachinePowerStatePoweredOff
		if fault := vm.MarkAsTemplate(&types.MarkAsTemplate{This: vm.Self}).Fault(); fault != nil {
			return fmt.Errorf("mark %s as a template: %v", name, fault.VimFault())
		}
		return nil
	}
	return fmt.Errorf("the model has no VM named %s", name)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (port 0: a free port)")
	username := flag.String("username", "user", "the only user name Login accepts")
	password := flag.String("password", "pass", "the only password Login accepts")
	stdinEOF := flag.Bool("exit-on-stdin-eof", false, "exit when standard input closes")
	template := flag.String("template", "", "a VM of the model to turn into a template")
	flag.Parse()

	model := simulator.VPX()
	if err := model.Create(); err != nil {
		log.Fatalf("vcsim: create the VPX model: %v", err)
	}
	defer model.Remove()
	if *template != "" {
		if err := markAsTemplate(*template); err != nil {
			log.Fatalf("vcsim: %v", err)
		}
	}

	// A fresh Userinfo (not simulator.DefaultLogin) makes Login check both fields.
	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*username, *password)}
	certificate, err := serverCertificate()
	if err != nil {
		log.Fatalf("vcsim: make the server certificate: %v", err)
	}
	model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{certificate}}
	server := model.Service.NewServer()
	defer server.Close()

	public := *server.URL
	public.User = nil
	fmt.Printf("VCSIM_URL=%s\n", public.String())
	os.Stdout.Sync()

	done := make(chan string, 1)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() { done <- (<-signals).String() }()
	if *stdinEOF {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			done <- "standard input closed"
		}()
	}
	log.Printf("vcsim: stopping (%s)", <-done)
}
