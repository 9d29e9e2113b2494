package main

// Security settings of a request ("security": {...}): TLS with the test CA, and SASL PLAIN, SCRAM-SHA-256/512
// (scram.go) or OAUTHBEARER with a fixed token, as sarama 1.22's Config.Net.TLS / Config.Net.SASL take them.

import (
	"crypto/tls"
	"crypto/x509"
	"io/ioutil"
	"log"

	"github.com/Shopify/sarama"
)

type security struct {
	TLSCA       string `json:"tls_ca"`
	Mechanism   string `json:"sasl_mechanism"`
	Username    string `json:"username"`
	Password    string `json:"password"`
	Token       string `json:"token"`
	HandshakeV0 bool   `json:"handshake_v0"`
}

type staticToken string

func (t staticToken) Token() (*sarama.AccessToken, error) {
	return &sarama.AccessToken{Token: string(t)}, nil
}

func applySecurity(c *sarama.Config, s *security) {
	if s == nil {
		return
	}
	if s.TLSCA != "" {
		pem, err := ioutil.ReadFile(s.TLSCA)
		if err != nil {
			log.Fatalf("tls_ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			log.Fatalf("tls_ca %s holds no PEM certificate", s.TLSCA)
		}
		c.Net.TLS.Enable = true
		c.Net.TLS.Config = &tls.Config{RootCAs: pool} // ServerName comes from the address: the IP SAN is checked
	}
	if s.Mechanism == "" {
		return
	}
	c.Net.SASL.Enable = true
	c.Net.SASL.Handshake = true
	c.Net.SASL.Mechanism = sarama.SASLMechanism(s.Mechanism)
	c.Net.SASL.User = s.Username
	c.Net.SASL.Password = s.Password
	switch s.Mechanism {
	case sarama.SASLTypeSCRAMSHA256, sarama.SASLTypeSCRAMSHA512:
		mechanism := s.Mechanism
		c.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return newScramClient(mechanism) }
	case sarama.SASLTypeOAuth:
		c.Net.SASL.TokenProvider = staticToken(s.Token)
	}
}
