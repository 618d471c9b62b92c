// Package webauthntest is a software FIDO2 authenticator and the browser
// half of WebAuthn, for tests that exercise Rampart's security-key
// ceremonies without a browser: it answers the options a relying party
// sends to navigator.credentials.create and .get with the JSON a browser
// would post back, signing with P-256 keys kept in memory ("none"
// attestation).
//
// Its knobs let tests misbehave on purpose: answer from another origin,
// ignore the allow list, or reset a key's signature counter as a cloned
// key would.
package webauthntest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
)

// Authenticator holds credentials and answers ceremonies from one origin.
type Authenticator struct {
	// Origin is what the browser reports as the page's origin.
	Origin string
	// UserVerified sets the UV flag: the authenticator checked a PIN or
	// biometric.
	UserVerified bool
	// IgnoreAllowList makes Get answer with the first credential for the
	// relying party even when the request lists other credentials.
	IgnoreAllowList bool

	creds []*Credential
}

// Credential is a key pair the authenticator created.
type Credential struct {
	ID         []byte
	RPID       string
	UserHandle []byte
	// Counter is the signature counter; Get increments it before signing.
	Counter uint32
	key     *ecdsa.PrivateKey
}

// New returns an authenticator for pages served from origin, which
// verifies its user.
func New(origin string) *Authenticator {
	return &Authenticator{Origin: origin, UserVerified: true}
}

// Credentials returns the credentials created so far, oldest first.
func (a *Authenticator) Credentials() []*Credential { return a.creds }

var b64 = base64.RawURLEncoding

// b64bytes decodes base64url JSON strings (padded or not).
type b64bytes []byte

func (b *b64bytes) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	d, err := b64.DecodeString(trimPad(s))
	if err != nil {
		return err
	}
	*b = d
	return nil
}

func trimPad(s string) string {
	for len(s) > 0 && s[len(s)-1] == '=' {
		s = s[:len(s)-1]
	}
	return s
}

type descriptor struct {
	ID b64bytes `json:"id"`
}

type creationOptions struct {
	PublicKey struct {
		Challenge b64bytes `json:"challenge"`
		RP        struct {
			ID string `json:"id"`
		} `json:"rp"`
		User struct {
			ID b64bytes `json:"id"`
		} `json:"user"`
		Exclude    []descriptor `json:"excludeCredentials"`
		Extensions struct {
			CredProps bool `json:"credProps"`
		} `json:"extensions"`
	} `json:"publicKey"`
}

type requestOptions struct {
	PublicKey struct {
		Challenge b64bytes     `json:"challenge"`
		RPID      string       `json:"rpId"`
		Allow     []descriptor `json:"allowCredentials"`
	} `json:"publicKey"`
}

// Flags of the authenticator data.
const (
	flagUP = 0x01
	flagUV = 0x04
	flagAT = 0x40
)

func (a *Authenticator) flags() byte {
	f := byte(flagUP)
	if a.UserVerified {
		f |= flagUV
	}
	return f
}

func (a *Authenticator) clientData(typ string, challenge []byte) []byte {
	cd, _ := json.Marshal(map[string]any{"type": typ, "challenge": b64.EncodeToString(challenge), "origin": a.Origin,
		"crossOrigin": false})
	return cd
}

// Create answers credential creation options (the JSON object with a
// publicKey member) with a new discoverable credential, as the JSON of the
// PublicKeyCredential a browser posts.
func (a *Authenticator) Create(options []byte) ([]byte, error) {
	var o creationOptions
	if err := json.Unmarshal(options, &o); err != nil {
		return nil, fmt.Errorf("read creation options: %w", err)
	}
	pk := o.PublicKey
	if len(pk.Challenge) == 0 || pk.RP.ID == "" || len(pk.User.ID) == 0 {
		return nil, errors.New("creation options lack a challenge, rp.id or user.id")
	}
	for _, ex := range pk.Exclude {
		for _, c := range a.creds {
			if bytes.Equal(c.ID, ex.ID) {
				return nil, errors.New("InvalidStateError: the authenticator holds an excluded credential")
			}
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	c := &Credential{ID: make([]byte, 16), RPID: pk.RP.ID, UserHandle: pk.User.ID, key: key}
	if _, err := rand.Read(c.ID); err != nil {
		return nil, err
	}
	pub, err := key.PublicKey.ECDH()
	if err != nil {
		return nil, err
	}
	point := pub.Bytes() // 0x04 || X || Y
	cose, err := webauthncbor.Marshal(webauthncose.EC2PublicKeyData{
		PublicKeyData: webauthncose.PublicKeyData{KeyType: int64(webauthncose.EllipticKey), Algorithm: int64(webauthncose.AlgES256)},
		Curve:         int64(webauthncose.P256), XCoord: point[1:33], YCoord: point[33:65],
	})
	if err != nil {
		return nil, err
	}
	rpHash := sha256.Sum256([]byte(c.RPID))
	var ad bytes.Buffer
	ad.Write(rpHash[:])
	ad.WriteByte(a.flags() | flagAT)
	ad.Write(binary.BigEndian.AppendUint32(nil, c.Counter))
	ad.Write(make([]byte, 16)) // AAGUID
	ad.Write(binary.BigEndian.AppendUint16(nil, uint16(len(c.ID))))
	ad.Write(c.ID)
	ad.Write(cose)
	att, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": ad.Bytes()})
	if err != nil {
		return nil, err
	}
	a.creds = append(a.creds, c)
	ext := map[string]any{}
	if pk.Extensions.CredProps {
		ext["credProps"] = map[string]any{"rk": true}
	}
	return json.Marshal(map[string]any{
		"id": b64.EncodeToString(c.ID), "rawId": b64.EncodeToString(c.ID), "type": "public-key",
		"authenticatorAttachment": "platform",
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(a.clientData("webauthn.create", pk.Challenge)),
			"attestationObject": b64.EncodeToString(att),
			"transports":        []string{"internal"},
		},
		"clientExtensionResults": ext,
	})
}

// Get answers credential request options with an assertion by one of the
// authenticator's credentials: the first one the request allows, or, for
// a request without an allow list (passkey sign-in), the first one for
// the relying party.
func (a *Authenticator) Get(options []byte) ([]byte, error) {
	var o requestOptions
	if err := json.Unmarshal(options, &o); err != nil {
		return nil, fmt.Errorf("read request options: %w", err)
	}
	pk := o.PublicKey
	if len(pk.Challenge) == 0 || pk.RPID == "" {
		return nil, errors.New("request options lack a challenge or rpId")
	}
	c := a.pick(pk.RPID, pk.Allow)
	if c == nil {
		return nil, errors.New("NotAllowedError: no credential for this request")
	}
	c.Counter++
	rpHash := sha256.Sum256([]byte(c.RPID))
	var ad bytes.Buffer
	ad.Write(rpHash[:])
	ad.WriteByte(a.flags())
	ad.Write(binary.BigEndian.AppendUint32(nil, c.Counter))
	cd := a.clientData("webauthn.get", pk.Challenge)
	cdHash := sha256.Sum256(cd)
	digest := sha256.Sum256(append(bytes.Clone(ad.Bytes()), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, c.key, digest[:])
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id": b64.EncodeToString(c.ID), "rawId": b64.EncodeToString(c.ID), "type": "public-key",
		"authenticatorAttachment": "platform",
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(cd),
			"authenticatorData": b64.EncodeToString(ad.Bytes()),
			"signature":         b64.EncodeToString(sig),
			"userHandle":        b64.EncodeToString(c.UserHandle),
		},
		"clientExtensionResults": map[string]any{},
	})
}

func (a *Authenticator) pick(rpID string, allow []descriptor) *Credential {
	for _, c := range a.creds {
		if c.RPID != rpID {
			continue
		}
		if len(allow) == 0 || a.IgnoreAllowList {
			return c
		}
		for _, d := range allow {
			if bytes.Equal(d.ID, c.ID) {
				return c
			}
		}
	}
	return nil
}
