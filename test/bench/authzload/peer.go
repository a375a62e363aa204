package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// peerDecisionPath is where test/bench/peer's policy answers, in the
// opa-envoy-plugin's path syntax.
const peerDecisionPath = "envoy/authz/response"

// PeerData is data.peer for the peer policy: what airlock reads from its
// config and its issuer's JWKS, handed to OPA as a data document.
type PeerData struct {
	Issuer  PeerIssuer            `json:"issuer"`
	Targets map[string]PeerTarget `json:"targets"`
}

// PeerIssuer is the trusted issuer and its key set (a JWKS document as a
// string, io.jwt.decode_verify's "cert" constraint).
type PeerIssuer struct {
	URL  string `json:"url"`
	JWKS string `json:"jwks"`
}

// PeerTarget is one MCP target: the audience its tokens carry, the scopes
// it requires, the upstream credential and the Protected Resource
// Metadata URL for challenges.
type PeerTarget struct {
	Resource         string   `json:"resource"`
	ScopesRequired   []string `json:"scopes_required"`
	CredentialHeader string   `json:"credential_header"`
	Credential       string   `json:"credential"`
	MetadataURL      string   `json:"metadata_url"`
}

// benchPeerData is data.peer for the bench route.
func benchPeerData(issuerURL, jwks, credential string) PeerData {
	return PeerData{
		Issuer: PeerIssuer{URL: issuerURL, JWKS: jwks},
		Targets: map[string]PeerTarget{benchTarget: {
			Resource:         benchResource,
			ScopesRequired:   []string{benchScope},
			CredentialHeader: "authorization",
			Credential:       credential,
			MetadataURL:      benchPublic + "/.well-known/oauth-protected-resource" + benchPath,
		}},
	}
}

// fetchJWKS reads the issuer's key set as the peer will hold it.
func fetchJWKS(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("fetch JWKS %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("fetch JWKS %s: status %d, %v", url, resp.StatusCode, err)
	}
	return string(b), nil
}

// peerFiles writes the plugin's config and data.peer into dir and returns
// the `opa run` arguments that serve them with the peer policy, airlock's
// decision.rego and data.yaml: gRPC ext_authz on grpcAddr, OPA's own HTTP
// server on httpAddr, both loopback.
func peerFiles(dir, grpcAddr, httpAddr, peerPolicyDir, policyDir string, data PeerData) ([]string, error) {
	cfg := fmt.Sprintf(`# written by authzload for one benchmark run
plugins:
  envoy_ext_authz_grpc:
    addr: %s
    path: %s
decision_logs:
  console: false
`, grpcAddr, peerDecisionPath)
	cfgPath := filepath.Join(dir, "opa-config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", cfgPath, err)
	}
	b, err := json.Marshal(map[string]any{"peer": data})
	if err != nil {
		return nil, err
	}
	dataPath := filepath.Join(dir, "data.json")
	if err := os.WriteFile(dataPath, b, 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", dataPath, err)
	}
	files, err := peerPolicyFiles(peerPolicyDir, policyDir)
	if err != nil {
		return nil, err
	}
	args := []string{"run", "--server", "--addr", httpAddr, "--config-file", cfgPath,
		"--log-level", "error", "--skip-version-check"}
	return append(append(args, files...), dataPath), nil
}

// peerPolicyFiles lists the Rego the peer loads: test/bench/peer's policy
// (tests left out) and airlock's shipped decision policy and rules.
func peerPolicyFiles(peerPolicyDir, policyDir string) ([]string, error) {
	ents, err := os.ReadDir(peerPolicyDir)
	if err != nil {
		return nil, fmt.Errorf("peer policy: %w", err)
	}
	var files []string
	for _, e := range ents {
		if n := e.Name(); strings.HasSuffix(n, ".rego") && !strings.HasSuffix(n, "_test.rego") {
			files = append(files, filepath.Join(peerPolicyDir, n))
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("peer policy: no .rego file in %s", peerPolicyDir)
	}
	sort.Strings(files)
	files = append(files, filepath.Join(policyDir, "airlock", "decision.rego"), filepath.Join(policyDir, "data.yaml"))
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("peer policy: %w", err)
		}
	}
	return files, nil
}
