package check

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

const composeDir = "../compose"

// loadCompose loads compose.yaml as `docker compose` does, with compose-go
// (the Compose Specification's reference loader): validated against the
// spec's schema, where an unknown key is an error.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	abs, err := filepath.Abs(composeDir)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(abs, "compose.yaml")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  abs,
		ConfigFiles: []types.ConfigFile{{Filename: file, Content: b}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) {
		o.SetProjectName("airlock", true)
		o.ResolvePaths = true
	})
	if err != nil {
		t.Fatalf("compose-go: %v", err)
	}
	return p
}

// TestComposeRejectsUnknownKeys: compose-go is strict the way this test
// relies on (a misspelt key fails the load).
func TestComposeRejectsUnknownKeys(t *testing.T) {
	for _, tc := range []struct{ name, yaml string }{
		{"misspelt service key", "services: {a: {image: x, netwrok_mode: host}}"},
		{"misspelt top-level key", "service: {a: {image: x}}"},
		{"bad healthcheck", "services: {a: {image: x, healthcheck: {tests: [CMD, x]}}}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
				WorkingDir:  t.TempDir(),
				ConfigFiles: []types.ConfigFile{{Filename: "compose.yaml", Content: []byte(tc.yaml)}},
				Environment: types.Mapping{},
			}, func(o *loader.Options) { o.SetProjectName("x", true) })
			if err == nil {
				t.Errorf("compose-go loaded %q", tc.yaml)
			}
		})
	}
}

// TestCompose: the stack loads strictly; Envoy is pinned at or above the
// floor and shares airlock's network namespace; airlock's services listen
// on that namespace's loopback; only loopback ports are published;
// airlock.yaml, laid out with the stack's volumes and environment, passes
// `airlock validate`; envoy.yaml is `airlock envoy bootstrap` of it.
func TestCompose(t *testing.T) {
	p := loadCompose(t)
	al, err := p.GetService("airlock")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"envoy", "issuer"} {
		s, err := p.GetService(name)
		if err != nil {
			t.Fatal(err)
		}
		if s.NetworkMode != types.NetworkModeServicePrefix+"airlock" {
			t.Errorf("service %s: network_mode %q, want service:airlock (airlock's services are on its loopback)", name, s.NetworkMode)
		}
	}
	envoySvc, _ := p.GetService("envoy")
	checkEnvoyImage(t, "compose.yaml envoy", envoySvc.Image)
	for _, s := range p.Services {
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("service %s publishes %s on %q: only the host's loopback", s.Name, port.Published, port.HostIP)
			}
		}
	}

	// A service others wait on to be healthy has a healthcheck: its own,
	// or the image's (the Dockerfile's HEALTHCHECK, for airlock's image).
	for _, s := range p.Services {
		for dep, d := range s.DependsOn {
			if d.Condition != types.ServiceConditionHealthy {
				continue
			}
			ds, err := p.GetService(dep)
			if err != nil {
				t.Fatal(err)
			}
			if ds.HealthCheck == nil && (ds.Build == nil || ds.Build.Dockerfile != "deploy/docker/Dockerfile") {
				t.Errorf("service %s waits for %s to be healthy, which has no healthcheck", s.Name, dep)
			}
		}
		// Commands in airlock's image name binaries the image has.
		if s.Image == al.Image && s.HealthCheck != nil && len(s.HealthCheck.Test) > 1 && s.HealthCheck.Test[0] == "CMD" {
			if bin := s.HealthCheck.Test[1]; bin != "/usr/local/bin/wget" && bin != "/usr/local/bin/airlock" {
				t.Errorf("service %s: healthcheck runs %s, which airlock's image does not have", s.Name, bin)
			}
		}
	}

	// airlock's files where its volumes put them, its environment.
	r := rooted{root: t.TempDir(), prefixes: []string{"/etc/airlock", "/var/lib/airlock"}}
	for _, v := range al.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		copyTree(t, v.Source, filepath.Join(r.root, v.Target))
	}
	for k, v := range al.Environment {
		if v == nil {
			t.Fatalf("service airlock: environment %s has no value", k)
		}
		t.Setenv(k, *v)
	}
	cfgPath := filepath.Join(r.root, "etc/airlock/airlock.yaml")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatalf("airlock.yaml is not mounted at /etc/airlock/airlock.yaml: %v", err)
	}
	writeFile(t, cfgPath, r.in(string(b)))
	validate(t, cfgPath)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	for name, addr := range map[string]string{"authz": cfg.Listen.Authz, "proc": cfg.Listen.Proc, "xds": cfg.Listen.XDS, "http": cfg.Listen.HTTP} {
		if lo, ok := config.LoopbackLiteral(addr); !ok || !lo {
			t.Errorf("listen.%s %q: want the shared namespace's loopback", name, addr)
		}
	}

	out, errs, code := runAirlock(t, "envoy", "bootstrap", "--config", cfgPath, "--node-id", "compose-envoy")
	if code != 0 {
		t.Fatalf("airlock envoy bootstrap: %s", errs)
	}
	got := []byte(r.out(out))
	golden(t, filepath.Join(composeDir, "envoy.yaml"), append([]byte(composeEnvoyHeader), got...))
}

const composeEnvoyHeader = "# `airlock envoy bootstrap --config airlock.yaml --node-id compose-envoy`\n# (deploy/check: go test -update rewrites it). Envoy gets the rest over ADS.\n"

// copyTree copies the file or directory src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}

// checkEnvoyImage: an envoyproxy/envoy image pinned to a release at or
// above airlock's floor (1.34: ext_proc protocol_config).
func checkEnvoyImage(t *testing.T, where, image string) {
	t.Helper()
	repo, tag, ok := strings.Cut(image, ":")
	if !ok || repo != "envoyproxy/envoy" {
		t.Errorf("%s: image %q: want envoyproxy/envoy:vX.Y.Z", where, image)
		return
	}
	var major, minor, patch int
	if n, err := fmt.Sscanf(tag, "v%d.%d.%d", &major, &minor, &patch); n != 3 || err != nil {
		t.Errorf("%s: image %q: pin a release tag (vX.Y.Z), not %q", where, image, tag)
		return
	}
	if major < 1 || (major == 1 && minor < 34) {
		t.Errorf("%s: image %q is below airlock's Envoy floor, 1.34", where, image)
	}
}
