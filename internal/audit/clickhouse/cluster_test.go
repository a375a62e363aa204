package clickhouse

import (
	"context"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	chtest "github.com/airlock-mcp/airlock/test/clickhouse"

	"github.com/airlock-mcp/airlock/internal/audit"
)

var (
	clusterOnce sync.Once
	cluster     *chtest.Cluster
	clusterErr  error
)

// sharedCluster is one ZooKeeper and two ClickHouse servers, replicas of
// one shard of cluster "airlock", for the package's cluster tests (each
// uses its own database). Tests that stop a node start it again.
func sharedCluster(t testing.TB) *chtest.Cluster {
	t.Helper()
	clusterOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cluster, clusterErr = chtest.StartCluster(ctx, chtest.ClusterOptions{Name: "airlock"})
	})
	if clusterErr != nil {
		t.Fatal(clusterErr)
	}
	return cluster
}

// TestRenderStandaloneUnchanged: the templates the cluster layout added
// render, on one server, exactly the statements migration 1 always had
// (servers migrated before keep their schema).
func TestRenderStandaloneUnchanged(t *testing.T) {
	before, err := os.ReadFile("testdata/0001_tables.before-cluster.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, caps := range []serverCaps{{Version: "18.16.1"}, {Version: "24.8.1", Modern: true}} {
		data := newTemplateData(schemaLayout{DB: "airlock"}, caps)
		want, err := render(string(before), data)
		if err != nil {
			t.Fatal(err)
		}
		got, err := render(migrations[0].SQL, data)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(statements(want), statements(got)); d != "" {
			t.Errorf("%s: one-server schema changed (-before +now):\n%s", caps.Version, d)
		}
	}
}

// TestRenderCluster: on a cluster every CREATE is ON CLUSTER, of a
// Replicated engine on TABLE_local with the {shard}/{replica} macros, on
// 18.16 and current releases alike.
func TestRenderCluster(t *testing.T) {
	for _, caps := range []serverCaps{{Version: "18.16.1"}, {Version: "24.8.1", Modern: true}} {
		sql, err := render(migrations[0].SQL, newTemplateData(schemaLayout{DB: "audit", Cluster: "prod-1"}, caps))
		if err != nil {
			t.Fatal(err)
		}
		sts := statements(sql)
		if len(sts) != 4 {
			t.Fatalf("%d statements, want 4", len(sts))
		}
		for i, table := range []string{tableEvents, tableDecisions, tableRequests, tableGrants} {
			for _, want := range []string{
				"CREATE TABLE IF NOT EXISTS audit." + table + "_local ON CLUSTER `prod-1` (",
				"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/audit/" + table + "_local', '{replica}')",
				"PARTITION BY toYYYYMMDD(time)",
			} {
				if !strings.Contains(sts[i], want) {
					t.Errorf("%s: statement %d lacks %q:\n%s", caps.Version, i, want, sts[i])
				}
			}
		}
	}
}

// clusterConfig is testConfig over every node of c, in order.
func clusterConfig(t *testing.T, c *chtest.Cluster, db string) audit.Config {
	cfg := testConfig(t, "", db)
	cfg.ClickHouse.Addr = ""
	cfg.ClickHouse.Addrs = c.Addrs()
	cfg.ClickHouse.Cluster = c.Name
	cfg.ClickHouse.DialTimeout = 500 * time.Millisecond
	return cfg
}

func engineOf(t *testing.T, addr, db, table string) string {
	t.Helper()
	var e string
	rows, err := connect(t, addr).Query(ctxT(t, 30*time.Second), "SELECT engine FROM system.tables WHERE database = ? AND name = ?", db, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(&e); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// TestClusterMigrate: through one node, the migrations create the schema
// ON CLUSTER: every node has the replicated local tables, the
// Distributed tables under the documented names and schema_migrations
// (replicated: migrating again through the other node applies nothing).
// A database made for one server refuses the cluster layout and the
// other way round, rather than writing to the wrong tables.
func TestClusterMigrate(t *testing.T) {
	c := sharedCluster(t)
	db := testDB(t)
	cfg := clusterConfig(t, c, db)
	ctx := ctxT(t, 2*time.Minute)
	for i, addr := range c.Addrs() {
		one := cfg.ClickHouse
		one.Addrs = []string{addr}
		ch, err := dialClickHouse(one, nopLog())
		if err != nil {
			t.Fatal(err)
		}
		if err := ch.ensureSchema(ctx); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		ch.close()
		if i == 0 {
			continue
		}
		// schema_migrations is replicated: the second node found both
		// migrations done.
		conn := connect(t, addr)
		if err := conn.Exec(ctx, "SYSTEM SYNC REPLICA "+db+".schema_migrations"); err != nil {
			t.Fatal(err)
		}
		if n := count(t, conn, "SELECT count() FROM "+db+".schema_migrations"); n != uint64(len(migrations)) {
			t.Errorf("node %d: schema_migrations has %d rows, want %d (one per migration, applied once)", i, n, len(migrations))
		}
	}
	for i, addr := range c.Addrs() {
		for _, table := range []string{tableEvents, tableDecisions, tableRequests, tableGrants} {
			if e := engineOf(t, addr, db, table); e != "Distributed" {
				t.Errorf("node %d: %s is %q, want Distributed", i, table, e)
			}
			if e := engineOf(t, addr, db, table+"_local"); e != "ReplicatedReplacingMergeTree" {
				t.Errorf("node %d: %s_local is %q, want ReplicatedReplacingMergeTree", i, table, e)
			}
		}
		if n := count(t, connect(t, addr), "SELECT count() FROM system.columns WHERE database = '"+db+"' AND name = 'seq'"); n != 4 {
			t.Errorf("node %d: %d seq columns, want 4 (request_events and grant_events, local and Distributed)", i, n)
		}
	}

	// The cluster's database on one server's settings, and a one-server
	// database with cluster settings: both refused.
	single := cfg.ClickHouse
	single.Cluster, single.Addrs = "", c.Addrs()[:1]
	ch, err := dialClickHouse(single, nopLog())
	if err != nil {
		t.Fatal(err)
	}
	defer ch.close()
	if err := ch.ensureSchema(ctx); err == nil || !strings.Contains(err.Error(), "set audit.clickhouse.cluster") {
		t.Errorf("one-server settings on a cluster database: got %v", err)
	}
	other := testDB(t)
	single.Database = other
	ch1, err := dialClickHouse(single, nopLog())
	if err != nil {
		t.Fatal(err)
	}
	defer ch1.close()
	if err := ch1.ensureSchema(ctx); err != nil {
		t.Fatal(err)
	}
	clustered := cfg.ClickHouse
	clustered.Database = other
	ch2, err := dialClickHouse(clustered, nopLog())
	if err != nil {
		t.Fatal(err)
	}
	defer ch2.close()
	if err := ch2.ensureSchema(ctx); err == nil || !strings.Contains(err.Error(), "made for one server") {
		t.Errorf("cluster settings on a one-server database: got %v", err)
	}
}

// localIDs are the event ids db.events_local holds on addr once its
// replica queue is done (FINAL), and its raw row count.
func localIDs(t *testing.T, addr, db string) (ids []string, raw uint64) {
	t.Helper()
	conn := connect(t, addr)
	if err := conn.Exec(ctxT(t, 2*time.Minute), "SYSTEM SYNC REPLICA "+db+".events_local"); err != nil {
		t.Fatalf("%s: SYSTEM SYNC REPLICA: %v", addr, err)
	}
	rows, err := conn.Query(ctxT(t, time.Minute), "SELECT event_id FROM "+db+".events_local FINAL ORDER BY event_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids, count(t, conn, "SELECT count() FROM "+db+".events_local")
}

// caughtUp waits until the replica on addr holds n events: a restarted
// replica fetches the parts it missed in the background, and SYSTEM SYNC
// REPLICA only waits for entries it has already queued.
func caughtUp(t *testing.T, addr, db string, n int) {
	t.Helper()
	conn := connect(t, addr)
	waitFor(t, "the replica on "+addr+" to catch up", func() bool {
		return count(t, conn, "SELECT count() FROM "+db+".events_local FINAL") >= uint64(n)
	})
}

// TestClusterNodeDown: audit through the cluster with one node down at a
// time, then both: airlock moves to the node that answers, the spool
// keeps rows while none does, and once both are back each replica holds
// every recorded event exactly once; the Distributed table answers the
// same through either node.
func TestClusterNodeDown(t *testing.T) {
	c := sharedCluster(t)
	db := testDB(t)
	p := startPipeline(t, clusterConfig(t, c, db), audit.Options{})
	a, b := c.Nodes[0], c.Nodes[1]
	t.Cleanup(func() { // leave the shared cluster whole
		for _, s := range c.Nodes {
			if !s.Running() {
				_ = s.Restart(context.Background())
			}
		}
	})
	restart := func(i int) {
		t.Helper()
		if err := c.Nodes[i].Restart(ctxT(t, time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	kill := func(i int) {
		t.Helper()
		if err := c.Nodes[i].Kill(); err != nil {
			t.Fatal(err)
		}
	}
	drain := func(what string) {
		t.Helper()
		if err := p.Drain(ctxT(t, 2*time.Minute)); err != nil {
			t.Fatalf("drain %s: %v", what, err)
		}
	}
	var ids []string
	recordN(t, p, "both-up", 500, &ids)
	drain("with both nodes up")

	// The first address crashes: airlock writes through the second.
	kill(0)
	recordN(t, p, "a-down", 1500, &ids)
	drain("with the first node down")
	sessionGone(t, c, 0, b.Addr(), db)
	restart(0)
	caughtUp(t, a.Addr(), db, len(ids))

	// The second crashes (airlock is connected to it): back to the first.
	kill(1)
	recordN(t, p, "b-down", 1500, &ids)
	drain("with the second node down")
	sessionGone(t, c, 1, a.Addr(), db)

	// Both down: rows wait in the spool until a node takes them.
	kill(0)
	errs := p.Stats().ShipErrors
	recordN(t, p, "all-down", 1000, &ids)
	waitFor(t, "a failed write with every node down", func() bool { return p.Stats().ShipErrors > errs })
	if p.Stats().SpoolBytes == 0 {
		t.Fatal("spool empty with every node down")
	}
	restart(1)
	drain("with the second node back alone")
	sessionGone(t, c, 0, b.Addr(), db)
	restart(0)
	recordN(t, p, "after", 500, &ids)
	drain("with both nodes back")

	sort.Strings(ids)
	for i, s := range c.Nodes {
		caughtUp(t, s.Addr(), db, len(ids))
		got, raw := localIDs(t, s.Addr(), db)
		if d := cmp.Diff(ids, got); d != "" {
			t.Fatalf("node %d's replica differs from the recorded events (-recorded +stored):\n%s", i, d)
		}
		t.Logf("node %d: %d events recorded, %d stored (raw rows %d)", i, len(ids), len(got), raw)
	}
	for i, s := range c.Nodes {
		dist, _ := storedIDs(t, s.Addr(), db)
		if d := cmp.Diff(ids, dist); d != "" {
			t.Fatalf("the Distributed table through node %d differs (-recorded +read):\n%s", i, d)
		}
	}
	if n := p.Stats().ShipErrors; n == 0 {
		t.Error("no ship errors counted across the outages")
	}
}

// sessionGone waits, asking the node at via, until ZooKeeper has expired
// the session of crashed node i (its replica's is_active node is gone):
// a replica restarted before that finds itself "already active" and
// waits a long retry period before it takes part again.
func sessionGone(t *testing.T, c *chtest.Cluster, i int, via, db string) {
	t.Helper()
	conn := connect(t, via)
	path := "/clickhouse/tables/" + c.Shard[i] + "/" + db + "/events_local/replicas/" + c.Replica[i]
	waitFor(t, "ZooKeeper to expire the session of "+c.Nodes[i].Addr(), func() bool {
		return count(t, conn, "SELECT count() FROM system.zookeeper WHERE path = '"+path+"' AND name = 'is_active'") == 0
	})
}
