package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	chgo "github.com/ClickHouse/clickhouse-go/v2"
)

// ClusterOptions shape a test cluster; zero values give one shard of two
// replicas named "airlock".
type ClusterOptions struct {
	Name     string // cluster name in remote_servers; default "airlock"
	Shards   int    // default 1
	Replicas int    // per shard; default 2
}

// Cluster is ClickHouse servers sharing one ZooKeeper, each configured
// with the cluster in remote_servers (internal_replication on, as
// Replicated tables under a Distributed table want), macros {shard} and
// {replica}, and distributed DDL, so ON CLUSTER, Replicated*MergeTree and
// Distributed work as on a real cluster, on loopback.
type Cluster struct {
	Name string
	ZK   *ZooKeeper
	// Nodes are in shard order: shard 1's replicas, then shard 2's, ….
	Nodes []*Server
	// Shard and Replica of each node, as its macros say.
	Shard, Replica []string
}

// StartCluster starts ZooKeeper and the servers.
func StartCluster(ctx context.Context, opts ClusterOptions) (*Cluster, error) {
	if opts.Name == "" {
		opts.Name = "airlock"
	}
	if opts.Shards <= 0 {
		opts.Shards = 1
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 2
	}
	if _, err := findBinary(""); err != nil {
		return nil, err
	}
	zk, err := StartZooKeeper(ctx)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Name: opts.Name, ZK: zk}
	for sh := 1; sh <= opts.Shards; sh++ {
		for r := 1; r <= opts.Replicas; r++ {
			s, err := prepare(Options{})
			if err != nil {
				c.Close()
				return nil, err
			}
			c.Nodes = append(c.Nodes, s)
			c.Shard = append(c.Shard, fmt.Sprintf("%02d", sh))
			c.Replica = append(c.Replica, fmt.Sprintf("r%d-%d", sh, r))
		}
	}
	var remote strings.Builder
	fmt.Fprintf(&remote, "  <remote_servers>\n    <%s>\n", opts.Name)
	for sh := range opts.Shards {
		remote.WriteString("      <shard>\n        <internal_replication>true</internal_replication>\n")
		for r := range opts.Replicas {
			fmt.Fprintf(&remote, "        <replica><host>127.0.0.1</host><port>%d</port></replica>\n", c.Nodes[sh*opts.Replicas+r].tcpPort)
		}
		remote.WriteString("      </shard>\n")
	}
	fmt.Fprintf(&remote, "    </%s>\n  </remote_servers>\n", opts.Name)
	fmt.Fprintf(&remote, "  <zookeeper><node><host>127.0.0.1</host><port>%d</port></node><session_timeout_ms>3000</session_timeout_ms></zookeeper>\n", zk.Port())
	remote.WriteString("  <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>\n")
	for i, s := range c.Nodes {
		extra := remote.String() + fmt.Sprintf("  <macros><shard>%s</shard><replica>%s</replica></macros>\n", c.Shard[i], c.Replica[i])
		if err := s.writeConfig(extra); err != nil {
			c.Close()
			return nil, err
		}
	}
	errs := make([]error, len(c.Nodes))
	var wg sync.WaitGroup
	for i, s := range c.Nodes {
		wg.Go(func() {
			if errs[i] = s.start(ctx); errs[i] == nil {
				errs[i] = s.waitZooKeeper(ctx)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// StartClusterT starts a cluster for a test, failing it when ClickHouse
// or ZooKeeper cannot run, and stops it when the test ends.
func StartClusterT(tb testing.TB, opts ClusterOptions) *Cluster {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := StartCluster(ctx, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// Addrs are the nodes' native protocol addresses, in Nodes order.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		out[i] = s.Addr()
	}
	return out
}

// Close stops every server, then ZooKeeper, and removes their directories.
func (c *Cluster) Close() error {
	var errs []error
	for _, s := range c.Nodes {
		if s == nil {
			continue
		}
		errs = append(errs, s.Close())
	}
	if c.ZK != nil {
		errs = append(errs, c.ZK.Close())
	}
	return errors.Join(errs...)
}

// waitZooKeeper returns once the server has a ZooKeeper session.
func (s *Server) waitZooKeeper(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	for {
		conn, err := chgo.Open(&chgo.Options{Addr: []string{s.Addr()}, DialTimeout: time.Second})
		if err == nil {
			var n uint64
			err = conn.QueryRow(ctx, "SELECT count() FROM system.zookeeper WHERE path = '/'").Scan(&n)
			conn.Close()
			if err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("clickhouse-server on %s has no ZooKeeper session: %v; %s", s.Addr(), err, s.logTail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
