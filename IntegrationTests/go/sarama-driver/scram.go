package main

// A SCRAM client (RFC 5802) for sarama's SCRAMClient interface with only the standard library: sarama 1.22 leaves
// the SCRAM exchange to the application (its examples use github.com/xdg/scram, which Debian does not package), and
// PBKDF2 is a few lines of HMAC (RFC 8018 §5.2).

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"

	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

type scramClient struct {
	newHash         func() hash.Hash
	user, password  string
	nonce           string
	clientFirstBare string
	serverSignature []byte
	step            int
	done            bool
}

func newScramClient(mechanism string) *scramClient {
	if mechanism == "SCRAM-SHA-512" {
		return &scramClient{newHash: sha512.New}
	}
	return &scramClient{newHash: sha256.New}
}

func (c *scramClient) Begin(user, password, authzID string) error {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	c.user, c.password, c.nonce = user, password, base64.RawStdEncoding.EncodeToString(b)
	c.step, c.done = 0, false
	return nil
}

func (c *scramClient) hmac(key, data []byte) []byte {
	m := hmac.New(c.newHash, key)
	m.Write(data)
	return m.Sum(nil)
}

func (c *scramClient) pbkdf2(salt []byte, iterations int) []byte {
	u := c.hmac([]byte(c.password), append(append([]byte{}, salt...), 0, 0, 0, 1))
	out := append([]byte{}, u...)
	for i := 1; i < iterations; i++ {
		u = c.hmac([]byte(c.password), u)
		for j := range out {
			out[j] ^= u[j]
		}
	}
	return out
}

func (c *scramClient) Step(challenge string) (string, error) {
	c.step++
	switch c.step {
	case 1:
		name := strings.NewReplacer("=", "=3D", ",", "=2C").Replace(c.user)
		c.clientFirstBare = "n=" + name + ",r=" + c.nonce
		return "n,," + c.clientFirstBare, nil
	case 2:
		fields := map[string]string{}
		for _, f := range strings.Split(challenge, ",") {
			if len(f) > 2 && f[1] == '=' {
				fields[f[:1]] = f[2:]
			}
		}
		if !strings.HasPrefix(fields["r"], c.nonce) {
			return "", errors.New("server nonce does not start with the client nonce")
		}
		salt, err := base64.StdEncoding.DecodeString(fields["s"])
		if err != nil {
			return "", fmt.Errorf("salt: %v", err)
		}
		iterations, err := strconv.Atoi(fields["i"])
		if err != nil {
			return "", fmt.Errorf("iterations: %v", err)
		}
		salted := c.pbkdf2(salt, iterations)
		clientKey := c.hmac(salted, []byte("Client Key"))
		h := c.newHash()
		h.Write(clientKey)
		storedKey := h.Sum(nil)
		withoutProof := "c=biws,r=" + fields["r"]
		authMessage := []byte(c.clientFirstBare + "," + challenge + "," + withoutProof)
		signature := c.hmac(storedKey, authMessage)
		proof := make([]byte, len(clientKey))
		for i := range clientKey {
			proof[i] = clientKey[i] ^ signature[i]
		}
		c.serverSignature = c.hmac(c.hmac(salted, []byte("Server Key")), authMessage)
		return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
	case 3:
		c.done = true
		if challenge != "v="+base64.StdEncoding.EncodeToString(c.serverSignature) {
			return "", errors.New("server signature does not match: the server does not know the password")
		}
		return "", nil
	}
	return "", errors.New("SCRAM exchange already complete")
}

func (c *scramClient) Done() bool { return c.done }
