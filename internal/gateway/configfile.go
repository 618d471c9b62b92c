package gateway

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"

	"go.yaml.in/yaml/v3"

	"github.com/rampartsec/rampart/internal/apperr"
)

// MaxConfigFile caps the gateway config file.
const MaxConfigFile = 4 << 20

// maxFileRoutes caps the routes of the config file.
const maxFileRoutes = 10000

// FileConfig is the gateway config file (rampart up --gateway-config):
// site routes managed by the operator, and certificates for hosts that
// should not get one from Rampart's CA.
type FileConfig struct {
	Routes       []FileRoute `yaml:"routes"`
	Certificates []FileCert  `yaml:"certificates"`
}

// FileRoute is a route of the config file: a name and a spec.
type FileRoute struct {
	Name string `yaml:"name"`
	Spec `yaml:",inline"`
}

// FileCert names a PEM certificate chain and its key.
type FileCert struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// ParseConfig reads and checks a gateway config file: strict YAML (unknown
// fields are errors), valid route specs, unique names, no two routes on
// the same host and path.
func ParseConfig(data []byte) (FileConfig, error) {
	var fc FileConfig
	if len(data) > MaxConfigFile {
		return fc, apperr.E(apperr.Invalid, "gateway config is over %d bytes", MaxConfigFile)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		return FileConfig{}, apperr.E(apperr.Invalid, "gateway config: %s", yamlMessage(err))
	}
	if len(fc.Routes) > maxFileRoutes {
		return FileConfig{}, apperr.E(apperr.Invalid, "gateway config: more than %d routes", maxFileRoutes)
	}
	names := map[string]bool{}
	var specs []Spec
	for i, r := range fc.Routes {
		if err := ValidateName(r.Name); err != nil {
			return FileConfig{}, apperr.E(apperr.Invalid, "gateway config: routes[%d]: %s", i, apperr.Message(err))
		}
		if names[r.Name] {
			return FileConfig{}, apperr.E(apperr.Invalid, "gateway config: route %s is defined twice", r.Name)
		}
		names[r.Name] = true
		spec, err := r.Spec.Normalize()
		if err != nil {
			return FileConfig{}, apperr.E(apperr.Invalid, "gateway config: route %s: %s", r.Name, apperr.Message(err))
		}
		for j, o := range specs {
			if overlaps(o, spec) {
				return FileConfig{}, apperr.E(apperr.Invalid, "gateway config: routes %s and %s both claim host %q path %s", fc.Routes[j].Name, r.Name, spec.Host, spec.Path)
			}
		}
		specs = append(specs, spec)
		fc.Routes[i].Spec = spec
	}
	for i, c := range fc.Certificates {
		if c.Cert == "" || c.Key == "" {
			return FileConfig{}, apperr.E(apperr.Invalid, "gateway config: certificates[%d] needs cert and key files", i)
		}
	}
	return fc, nil
}

func yamlMessage(err error) string {
	s := err.Error()
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// LoadConfigFile reads the config file at path.
func LoadConfigFile(path string) (FileConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		return FileConfig{}, apperr.Wrap(err, apperr.Invalid, "open gateway config "+path)
	}
	defer f.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(io.LimitReader(f, MaxConfigFile+1)); err != nil {
		return FileConfig{}, fmt.Errorf("read gateway config: %w", err)
	}
	return ParseConfig(b.Bytes())
}

// LoadCertificates loads the config file's certificates.
func (fc FileConfig) LoadCertificates() ([]tls.Certificate, error) {
	var out []tls.Certificate
	for _, c := range fc.Certificates {
		kp, err := tls.LoadX509KeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, apperr.Wrap(err, apperr.Invalid, "gateway config: certificate "+c.Cert+": "+err.Error())
		}
		out = append(out, kp)
	}
	return out, nil
}
