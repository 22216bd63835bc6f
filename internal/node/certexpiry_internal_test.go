package node

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The expiry reported for a certificate is its chain's earliest: an
// intermediate that expires before the leaf ends every connection made
// with it then. The external bus's client certificate is reported too,
// from its file, as the NATS client reads it at each connection.
func TestCertificateExpiryOfTheBusAndTheChain(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial := int64(0)
	issue := func(name string, notAfter time.Time, ca bool, parent *x509.Certificate) *x509.Certificate {
		t.Helper()
		serial++
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: notAfter,
			IsCA: ca, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		}
		if parent == nil {
			parent = tmpl
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return cert
	}
	root := issue("root", now.Add(10*365*24*time.Hour), true, nil)
	inter := issue("intermediate", now.Add(30*24*time.Hour), true, root)
	leaf := issue("bus client", now.Add(90*24*time.Hour), false, inter)

	file := filepath.Join(t.TempDir(), "bus.crt")
	var pemData []byte
	for _, c := range []*x509.Certificate{leaf, inter} {
		pemData = append(pemData, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	if err := os.WriteFile(file, pemData, 0o600); err != nil {
		t.Fatal(err)
	}
	n := &Node{cfg: Config{BusCert: file}, sec: &security{}}
	got := collectExpiry(t, n)
	if want := float64(inter.NotAfter.Unix()); got["bus"] != want {
		t.Errorf("use=bus = %v, want the intermediate's NotAfter %v (the leaf's is %v)", got["bus"], want, leaf.NotAfter.Unix())
	}
	if at, ok := chainNotAfter([][]byte{leaf.Raw}); !ok || !at.Equal(leaf.NotAfter) {
		t.Errorf("a leaf alone expires %v, %v; want %v", at, ok, leaf.NotAfter)
	}

	// A file the scrape cannot read shows no series rather than a stale one.
	if err := os.WriteFile(file, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := collectExpiry(t, n); len(got) != 0 {
		t.Errorf("with an unreadable bus certificate the scrape reports %v, want nothing", got)
	}
}

// collectExpiry scrapes n's certificate collector: the value by use.
func collectExpiry(t *testing.T, n *Node) map[string]float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 8)
	certCollector{n}.Collect(ch)
	close(ch)
	got := map[string]float64{}
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		for _, l := range d.GetLabel() {
			if l.GetName() == "use" {
				got[l.GetValue()] = d.GetGauge().GetValue()
			}
		}
	}
	return got
}
