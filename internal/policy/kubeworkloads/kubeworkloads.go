// Package kubeworkloads lists the pods running in a Kubernetes cluster for
// the runtime gate (policy.Workloads), over the cluster's REST API with a
// bearer token: no Kubernetes Go module is needed. Pods that have
// finished (Succeeded, Failed) are left out; every other pod counts,
// pending ones included, since they are about to run.
package kubeworkloads

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/policy"
)

// Config says how to reach a cluster.
type Config struct {
	// URL is the API server, https://HOST:PORT.
	URL string
	// Token is a bearer token allowed to list pods (cluster-wide, or in
	// Namespace).
	Token string
	// CAPEM verifies the API server's certificate; empty uses the
	// system's roots.
	CAPEM []byte
	// Namespace limits the listing to one namespace; empty lists all.
	Namespace string
}

// Lister lists a cluster's pods.
type Lister struct {
	base      *url.URL
	token     string
	namespace string
	client    *http.Client
}

var _ policy.Workloads = (*Lister)(nil)

// pageSize is the pods asked for per request.
const pageSize = 500

// maxBody caps one page of pods.
const maxBody = 64 << 20

// New returns a lister for the cluster.
func New(c Config) (*Lister, error) {
	u, err := url.Parse(strings.TrimSuffix(c.URL, "/"))
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("kubeworkloads: API server URL %q must be https://HOST[:PORT]", c.URL)
	}
	if c.Token == "" {
		return nil, errors.New("kubeworkloads: a bearer token is required")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}
	if len(c.CAPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(c.CAPEM) {
			return nil, errors.New("kubeworkloads: the CA holds no PEM certificate")
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &Lister{base: u, token: c.Token, namespace: c.Namespace, client: &http.Client{Transport: tr, Timeout: time.Minute}}, nil
}

type podList struct {
	Metadata struct {
		Continue string `json:"continue"`
	} `json:"metadata"`
	Items []json.RawMessage `json:"items"`
}

type podMeta struct {
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Status struct {
		Phase string `json:"phase"`
	} `json:"status"`
}

// Workloads lists the pods that run or are about to.
func (l *Lister) Workloads(ctx context.Context) ([]policy.Workload, error) {
	path := "/api/v1/pods"
	if l.namespace != "" {
		path = "/api/v1/namespaces/" + url.PathEscape(l.namespace) + "/pods"
	}
	var out []policy.Workload
	next := ""
	for {
		q := url.Values{"limit": {fmt.Sprint(pageSize)}}
		if next != "" {
			q.Set("continue", next)
		}
		var list podList
		if err := l.get(ctx, path+"?"+q.Encode(), &list); err != nil {
			return nil, err
		}
		for _, raw := range list.Items {
			var m podMeta
			if err := json.Unmarshal(raw, &m); err != nil {
				return nil, fmt.Errorf("decode pod: %w", err)
			}
			if m.Status.Phase == "Succeeded" || m.Status.Phase == "Failed" {
				continue
			}
			// List items carry no kind; policies need it.
			var obj map[string]any
			if err := json.Unmarshal(raw, &obj); err != nil {
				return nil, fmt.Errorf("decode pod: %w", err)
			}
			obj["apiVersion"], obj["kind"] = "v1", "Pod"
			b, err := json.Marshal(obj)
			if err != nil {
				return nil, err
			}
			out = append(out, policy.Workload{Kind: "Pod", Namespace: m.Metadata.Namespace, Name: m.Metadata.Name, Object: b})
		}
		if next = list.Metadata.Continue; next == "" {
			return out, nil
		}
	}
}

func (l *Lister) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.base.String()+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+l.token)
	req.Header.Set("Accept", "application/json")
	resp, err := l.client.Do(req)
	if err != nil {
		return fmt.Errorf("list pods at %s: %w", l.base.Host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("list pods at %s: %w", l.base.Host, err)
	}
	if len(body) > maxBody {
		return fmt.Errorf("list pods at %s: a page is over %d bytes", l.base.Host, maxBody)
	}
	if resp.StatusCode != http.StatusOK {
		var st struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(body, &st)
		return fmt.Errorf("list pods at %s: %s: %s", l.base.Host, resp.Status, st.Message)
	}
	return json.Unmarshal(body, v)
}
