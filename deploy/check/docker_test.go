package check

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"golang.org/x/mod/modfile"
)

const dockerfile = "../docker/Dockerfile"

// TestDockerfile reads the Dockerfile with BuildKit's own parser (the
// one `docker build` runs) and checks what deploy/docker promises: a
// static binary (CGO off, and the binary builds that way), a Go release
// matching go.mod, a distroless non-root final image with a healthcheck,
// and build-context sources that exist.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	res, err := parser.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", dockerfile, err)
	}
	if len(res.Warnings) > 0 {
		for _, w := range res.Warnings {
			t.Errorf("%s: %s", dockerfile, w.Short)
		}
	}
	stages, _, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatalf("%s: %v", dockerfile, err)
	}
	if len(stages) < 2 {
		t.Fatalf("%s: want a build stage and a final stage", dockerfile)
	}

	goMod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	mf, err := modfile.ParseLax("go.mod", goMod, nil)
	if err != nil {
		t.Fatal(err)
	}
	goMinor := strings.Join(strings.SplitN(mf.Go.Version, ".", 3)[:2], ".")
	build := stages[0]
	if !strings.HasPrefix(build.BaseName, "golang:"+goMinor+"-") && !strings.HasPrefix(build.BaseName, "golang:"+mf.Go.Version) {
		t.Errorf("build stage FROM %s: go.mod says go %s", build.BaseName, mf.Go.Version)
	}
	cgoOff := false
	for _, c := range build.Commands {
		if run, ok := c.(*instructions.RunCommand); ok && strings.Contains(strings.Join(run.CmdLine, " "), "CGO_ENABLED=0 go build") {
			cgoOff = true
		}
		if cp, ok := c.(*instructions.CopyCommand); ok && cp.From == "" {
			for _, src := range cp.SourcePaths {
				if src == "." {
					continue
				}
				if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
					t.Errorf("COPY %s: not in the build context (the repository root): %v", src, err)
				}
			}
		}
	}
	if !cgoOff {
		t.Error("the build stage does not build with CGO_ENABLED=0 (a static binary)")
	}

	final := stages[len(stages)-1]
	if !strings.HasPrefix(final.BaseName, "gcr.io/distroless/static") || !strings.HasSuffix(final.BaseName, ":nonroot") {
		t.Errorf("final stage FROM %s: want gcr.io/distroless/static…:nonroot", final.BaseName)
	}
	var user string
	var health *instructions.HealthCheckCommand
	var entry []string
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.HealthCheckCommand:
			health = c
		case *instructions.EntrypointCommand:
			entry = c.CmdLine
		case *instructions.CopyCommand:
			for _, src := range c.SourcePaths {
				if c.From == "" {
					if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
						t.Errorf("COPY %s: not in the build context: %v", src, err)
					}
				}
			}
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "0" || u == "root" {
		t.Errorf("final stage USER %q: want a non-root user", user)
	}
	if health == nil || len(health.Health.Test) < 2 || health.Health.Test[0] != "CMD" {
		t.Errorf("final stage: want HEALTHCHECK CMD …, got %+v", health)
	} else if !slices.ContainsFunc(health.Health.Test, func(s string) bool { return strings.HasSuffix(s, "/healthz") }) {
		t.Errorf("HEALTHCHECK %v does not ask /healthz", health.Health.Test)
	}
	if len(entry) == 0 || entry[0] != "/usr/local/bin/airlock" {
		t.Errorf("ENTRYPOINT %v: want /usr/local/bin/airlock", entry)
	}

	// The binary builds with CGO off: no package it needs is cgo-only.
	cmd := exec.Command("go", "list", "-e", "-deps", "-f", "{{if .Error}}{{.ImportPath}}: {{.Error}}{{end}}{{if .DepsErrors}}{{.ImportPath}}: {{.DepsErrors}}{{end}}", "./cmd/airlock")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("CGO_ENABLED=0 go list ./cmd/airlock: %v\n%s", err, out)
	}
}
