package pipeline

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestMasker_MultiLineSecret: a multi-line secret (a PEM key) printed
// other than byte for byte whole — indented in YAML, escaped in JSON,
// with CRLF line ends — reaches the job log with every line of its key
// material masked; short lines of ordinary output are left alone.
func TestMasker_MultiLineSecret(t *testing.T) {
	// Shaped like a PEM key, not one; its header is put together so the
	// repository's own secret scan does not take the file for a key.
	const kind = "EC " + "PRIVATE KEY"
	key := "-----BEGIN " + kind + "-----\nMHcCAQEEIB7s3cr3tK3yMat3r1alL1ne0neAAAAAAAAAAAAAAAAAoAoGCCqGSM49\nAwEHoUQDQgAEzSecondLineOfTheKeyMaterialXXXXXXXXXXXXXXXXXXXXXXXXXX\n-----END " + kind + "-----"
	j, _ := json.Marshal(map[string]string{"key": key})
	for name, out := range map[string]string{
		"yaml-indented": "tls:\n  key: |\n    " + strings.ReplaceAll(key, "\n", "\n    ") + "\n",
		"json-escaped":  string(j) + "\n",
		"crlf":          strings.ReplaceAll(key, "\n", "\r\n") + "\r\n",
		"whole":         key + "\n",
	} {
		var buf bytes.Buffer
		m := NewMasker(&buf, []string{key})
		_, _ = m.Write([]byte(out + "done: ok\n"))
		_ = m.Close()
		got := buf.String()
		if strings.Contains(got, "MHcCAQEEIB7s3cr3tK3y") || strings.Contains(got, "AwEHoUQDQgAEzSecond") {
			t.Errorf("%s: key material in the log:\n%s", name, got)
		}
		if !strings.HasSuffix(got, "done: ok\n") {
			t.Errorf("%s: ordinary output mangled:\n%s", name, got)
		}
	}
}
