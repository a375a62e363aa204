package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/airlock-mcp/airlock/test/oidcissuer"
)

// alive reports a target process that exited during the benchmark.
func (t *running) alive() error {
	if t.proc == nil {
		return nil
	}
	select {
	case <-t.proc.exited:
		return t.fail(errors.New("exited during the benchmark"))
	default:
		return nil
	}
}

func (t *running) fail(err error) error {
	if t.proc != nil {
		return t.proc.fail(err)
	}
	return fmt.Errorf("%s at %s: %w", t.name, t.addr, err)
}

// setup starts (or finds) the target and picks its workload and the
// answer it must give.
func (b *bench) setup(ctx context.Context, name string) (*running, error) {
	switch name {
	case "noop":
		w, err := b.anyWorkload(ctx)
		if err != nil {
			return nil, err
		}
		if b.f.noopAddr != "" {
			// `authzload noop` serves its no-op processor on the same port.
			return &running{name: name, addr: b.f.noopAddr, procAddr: b.f.noopAddr, work: w, exp: ExpectOK{}}, nil
		}
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("noop: find this binary: %w", err)
		}
		p, addr, err := startNoop(ctx, self, filepath.Join(b.dir, "noop.log"))
		if err != nil {
			return nil, err
		}
		return &running{name: name, addr: addr, procAddr: addr, proc: p, work: w, exp: ExpectOK{}}, nil
	case "airlock":
		if b.f.airlockAddr != "" {
			w, err := b.givenWorkload()
			if err != nil {
				return nil, err
			}
			return &running{name: name, addr: b.f.airlockAddr, work: w, exp: ExpectAirlockAllow{}}, nil
		}
		return b.startAirlock(ctx)
	default: // peer
		if b.f.peerAddr != "" {
			w, err := b.givenWorkload()
			if err != nil {
				return nil, err
			}
			return &running{name: name, addr: b.f.peerAddr, work: w, exp: ExpectAirlockAllow{}}, nil
		}
		return b.startPeer(ctx)
	}
}

func (b *bench) startAirlock(ctx context.Context) (*running, error) {
	w, err := b.mintedWorkload(ctx)
	if err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	sc := serveConfig{Dir: b.dir, Authz: addr, IssuerURL: b.iss.URL(), PolicyDir: b.f.policyDir, Full: b.f.full}
	if b.f.full {
		if sc.Proc, err = freePort(); err != nil {
			return nil, err
		}
		sc.GrantsDir = filepath.Join(b.dir, "grants")
		if b.grants == "" && b.f.grants > 0 {
			b.logf("writing %d live grants into the grant store", b.f.grants)
			if err := writeGrants(sc.GrantsDir, b.f.grants, b.iss.URL()); err != nil {
				return nil, err
			}
			b.grants = sc.GrantsDir
		}
		if b.store != nil {
			sc.ClickHouse, sc.Database = b.store.addr, b.store.db
		}
	}
	cfg, err := sc.write()
	if err != nil {
		return nil, err
	}
	p, err := startProc("airlock", filepath.Join(b.dir, "airlock.log"), []string{credentialEnv + "=" + b.secret}, nil,
		b.f.airlockBin, "serve", "--config", cfg)
	if err != nil {
		return nil, err
	}
	return &running{name: "airlock", addr: addr, procAddr: sc.Proc, proc: p, work: w, exp: ExpectAirlockAllow{Credential: "Bearer " + b.secret}}, nil
}

func (b *bench) startPeer(ctx context.Context) (*running, error) {
	w, err := b.mintedWorkload(ctx)
	if err != nil {
		return nil, err
	}
	jwks, err := fetchJWKS(ctx, b.iss.JWKSURL())
	if err != nil {
		return nil, err
	}
	grpcAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	args, err := peerFiles(b.dir, grpcAddr, httpAddr, b.f.peerPolicyDir, b.f.policyDir, benchPeerData(b.iss.URL(), jwks, "Bearer "+b.secret))
	if err != nil {
		return nil, err
	}
	p, err := startProc("peer", filepath.Join(b.dir, "peer.log"), nil, nil, append([]string{b.f.peerBin}, args...)...)
	if err != nil {
		return nil, err
	}
	return &running{name: "peer", addr: grpcAddr, proc: p, work: w, exp: ExpectAirlockAllow{Credential: "Bearer " + b.secret}}, nil
}

// anyWorkload is the minted pool, or the given token's pool when only
// running servers are driven.
func (b *bench) anyWorkload(ctx context.Context) (*Workload, error) {
	if b.f.tokenEnv != "" && (b.f.airlockAddr != "" || !slices.Contains(b.f.targetList(), "airlock")) {
		return b.givenWorkload()
	}
	return b.mintedWorkload(ctx)
}

// mintedWorkload starts the in-process issuer once and mints the pool.
func (b *bench) mintedWorkload(context.Context) (*Workload, error) {
	if b.minted != nil {
		return b.minted, nil
	}
	iss, err := oidcissuer.New(oidcissuer.Options{Path: "/oauth2/default", TokenTTL: 2 * time.Hour})
	if err != nil {
		return nil, err
	}
	b.iss = iss
	var s [24]byte
	_, _ = rand.Read(s[:])
	b.secret = "ghp_bench" + hex.EncodeToString(s[:])
	b.logf("minting %d tokens (RS256) and %d requests", b.f.users, b.f.requests)
	users, err := MintUsers(iss, b.f.users, benchResource, benchScope)
	if err != nil {
		return nil, err
	}
	b.minted, err = NewWorkload(users, Shape{Host: benchHost, Path: benchPath, Target: benchTarget, Requests: b.f.requests, Fresh: b.f.fresh})
	return b.minted, err
}

func (b *bench) givenWorkload() (*Workload, error) {
	if b.given != nil {
		return b.given, nil
	}
	tok := strings.TrimSpace(os.Getenv(b.f.tokenEnv))
	if tok == "" {
		return nil, fmt.Errorf("token-env: $%s is empty", b.f.tokenEnv)
	}
	sub, err := TokenSubject(tok)
	if err != nil {
		return nil, fmt.Errorf("token-env: $%s: %w", b.f.tokenEnv, err)
	}
	w, err := NewWorkload([]UserToken{{Token: tok, Subject: sub}}, Shape{Host: benchHost, Path: benchPath, Target: benchTarget, Requests: b.f.requests, Fresh: b.f.fresh})
	b.given = w
	return w, err
}
