package registry

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// Media types the registry understands.
const (
	MediaOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MediaOCIIndex       = "application/vnd.oci.image.index.v1+json"
	MediaDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaOCIConfig      = "application/vnd.oci.image.config.v1+json"
	MediaDockerConfig   = "application/vnd.docker.container.image.v1+json"
	MediaEmptyJSON      = "application/vnd.oci.empty.v1+json"
)

// Descriptor is an OCI content descriptor.
type Descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	URLs         []string          `json:"urls,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Data         []byte            `json:"data,omitempty"`
	Platform     json.RawMessage   `json:"platform,omitempty"`
	ArtifactType string            `json:"artifactType,omitempty"`
}

// Manifest is the union of an image manifest and an index: the fields the
// registry looks at. The stored bytes are always the client's own.
type Manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType,omitempty"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        *Descriptor       `json:"config,omitempty"`
	Layers        []Descriptor      `json:"layers,omitempty"`
	Manifests     []Descriptor      `json:"manifests,omitempty"`
	Subject       *Descriptor       `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// maxDescriptors bounds the layers or manifests one manifest may list.
const maxDescriptors = 10000

// isIndex reports whether a media type is an index (manifest list).
func isIndex(mt string) bool { return mt == MediaOCIIndex || mt == MediaDockerList }

// parseManifest checks a manifest body against the media type the client
// sent (Content-Type) and returns it with its effective media type.
func parseManifest(body []byte, contentType string) (*Manifest, string, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&m); err != nil {
		return nil, "", fmt.Errorf("manifest is not valid JSON: %v", cleanJSONErr(err))
	}
	if dec.More() {
		return nil, "", fmt.Errorf("manifest has data after its JSON object")
	}
	ct := strings.TrimSpace(strings.Split(contentType, ";")[0])
	mt := m.MediaType
	switch {
	case mt == "" && ct == "":
		return nil, "", fmt.Errorf("manifest has no mediaType and the request no Content-Type")
	case mt == "":
		mt = ct
	case ct != "" && ct != mt:
		return nil, "", fmt.Errorf("Content-Type %q differs from the manifest's mediaType %q", ct, mt)
	}
	if m.SchemaVersion != 2 {
		return nil, "", fmt.Errorf("schemaVersion must be 2")
	}
	switch mt {
	case MediaOCIManifest, MediaDockerManifest:
		if m.Config == nil {
			return nil, "", fmt.Errorf("an image manifest needs a config descriptor")
		}
		if m.Manifests != nil {
			return nil, "", fmt.Errorf("an image manifest cannot list manifests")
		}
		if err := checkDescriptor("config", *m.Config); err != nil {
			return nil, "", err
		}
		for i, l := range m.Layers {
			if err := checkDescriptor(fmt.Sprintf("layers[%d]", i), l); err != nil {
				return nil, "", err
			}
		}
	case MediaOCIIndex, MediaDockerList:
		if m.Config != nil || m.Layers != nil {
			return nil, "", fmt.Errorf("an index cannot have a config or layers")
		}
		for i, d := range m.Manifests {
			if err := checkDescriptor(fmt.Sprintf("manifests[%d]", i), d); err != nil {
				return nil, "", err
			}
		}
	default:
		return nil, "", fmt.Errorf("unsupported manifest media type %q", mt)
	}
	if len(m.Layers) > maxDescriptors || len(m.Manifests) > maxDescriptors {
		return nil, "", fmt.Errorf("a manifest may list at most %d descriptors", maxDescriptors)
	}
	if m.Subject != nil {
		if err := checkDescriptor("subject", *m.Subject); err != nil {
			return nil, "", err
		}
	}
	return &m, mt, nil
}

func checkDescriptor(field string, d Descriptor) error {
	dg, ok := ParseDigest(d.Digest)
	if !ok {
		return fmt.Errorf("%s: invalid or unsupported digest %q", field, d.Digest)
	}
	if d.Size < 0 {
		return fmt.Errorf("%s: negative size", field)
	}
	if d.MediaType == "" {
		return fmt.Errorf("%s: mediaType is required", field)
	}
	if d.Data != nil {
		if int64(len(d.Data)) != d.Size || digestOf(dg.Algorithm(), d.Data) != dg {
			return fmt.Errorf("%s: embedded data does not match its digest and size", field)
		}
	}
	return nil
}

func cleanJSONErr(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case asErr(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case asErr(err, &te):
		return fmt.Sprintf("field %q has the wrong type", te.Field)
	}
	return "malformed"
}

// nonDistributable reports whether a layer may be missing from the
// registry: its media type says it is not to be distributed (OCI
// nondistributable, Docker foreign layers).
func nonDistributable(d Descriptor) bool {
	return strings.Contains(d.MediaType, ".nondistributable.") || strings.Contains(d.MediaType, ".foreign.")
}

// isTarLayer reports whether a layer is a file system change set.
func isTarLayer(mt string) bool {
	return strings.HasPrefix(mt, "application/vnd.oci.image.layer.v1.tar") ||
		strings.HasPrefix(mt, "application/vnd.docker.image.rootfs.diff.tar")
}

// scannable reports whether a manifest is a container image the scanner
// should look at (not a signature, SBOM or other artifact).
func scannable(m *Manifest, mt string) bool {
	if isIndex(mt) || m.ArtifactType != "" || m.Config == nil || len(m.Layers) == 0 {
		return false
	}
	if m.Config.MediaType != MediaOCIConfig && m.Config.MediaType != MediaDockerConfig {
		return false
	}
	for _, l := range m.Layers {
		if !isTarLayer(l.MediaType) {
			return false
		}
	}
	return true
}

// artifactTypeOf is what the referrers API reports for a manifest.
func artifactTypeOf(m *Manifest) string {
	if m.ArtifactType != "" {
		return m.ArtifactType
	}
	if m.Config != nil {
		return m.Config.MediaType
	}
	return ""
}

var _ = base64.StdEncoding
