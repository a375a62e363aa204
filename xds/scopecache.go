package xds

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// scopeCache serves the scoped routes — the base scope and one scope per
// grant — over incremental and state-of-the-world xDS. Each resource is
// kept only in its encoded form (rendered and marshaled once, when it
// changes); responses are assembled from those bytes.
//
// Incremental (delta): the cost per change depends only on the change.
// go-control-plane's LinearCache answers every change by comparing each
// wildcard subscriber's known versions with every resource, and copies
// that version map for every response: O(all grants) per grant change.
// Here every change is appended to a log with a sequence number, and each
// subscription's version map (which the delta server keeps for us and
// hands back on every request) carries the sequence it has seen under
// cursorKey. A change is then answered from the log entries after that
// cursor, and the map is updated in place. A subscription that is new,
// or whose cursor fell off the end of the log, gets a full comparison
// once.
//
// The map is only touched while the subscription has no pending response
// (go-control-plane's delta server cancels a watch through this cache's
// lock before it changes the subscription, and drains a fired response
// before it reads a request), so updating it in place is safe.
//
// State of the world: Envoy treats a SotW scoped-routes response as the
// complete set of scopes (ScopedRdsConfigSubscription::onConfigUpdate), so
// every change sends every scope: O(all grants) per change by protocol.
// The response is assembled from the stored bytes without re-encoding.
type scopeCache struct {
	typeURL string
	prefix  string

	mu        sync.Mutex
	seq       uint64
	resources map[string]*scopeEntry
	log       []logEntry // ascending seq
	watches   map[uint64]*deltaWatch
	sotw      map[uint64]*sotwWatch
	nextWatch uint64
}

type scopeEntry struct {
	any     *anypb.Any // deterministic encoding
	version string     // content hash: stable across restarts, so reconnects send nothing unchanged
}

type sotwWatch struct {
	req *discovery.DiscoveryRequest
	sub cache.Subscription
	ch  chan cache.Response
}

type logEntry struct {
	seq  uint64
	name string
}

type deltaWatch struct {
	req *discovery.DeltaDiscoveryRequest
	sub cache.Subscription
	ch  chan cache.DeltaResponse
}

// cursorKey holds a subscription's log position in its version map. It
// cannot collide with a resource: resource names never start with NUL.
const cursorKey = "\x00cursor"

// minLog is the least number of changes kept for subscribers that lag.
const minLog = 4096

var _ cache.Cache = (*scopeCache)(nil)

func newScopeCache(typeURL, prefix string) *scopeCache {
	return &scopeCache{typeURL: typeURL, prefix: prefix, resources: map[string]*scopeEntry{},
		watches: map[uint64]*deltaWatch{}, sotw: map[uint64]*sotwWatch{}}
}

// version is the cache's version: the SotW version_info and the delta
// system_version_info.
func (c *scopeCache) version() string { return c.prefix + strconv.FormatUint(c.seq, 10) }

// update sets and deletes resources and answers waiting subscribers.
func (c *scopeCache) update(set map[string]types.Resource, del []string) error {
	entries := make(map[string]*scopeEntry, len(set))
	for name, r := range set {
		body, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
		if err != nil {
			return fmt.Errorf("%s %q: %w", c.typeURL, name, err)
		}
		sum := sha256.Sum256(body)
		entries[name] = &scopeEntry{any: &anypb.Any{TypeUrl: c.typeURL, Value: body}, version: hex.EncodeToString(sum[:12])}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	before := c.seq
	for name, e := range entries {
		if cur, ok := c.resources[name]; ok && cur.version == e.version {
			continue
		}
		c.resources[name] = e
		c.seq++
		c.log = append(c.log, logEntry{seq: c.seq, name: name})
	}
	for _, name := range del {
		if _, ok := c.resources[name]; !ok {
			continue
		}
		delete(c.resources, name)
		c.seq++
		c.log = append(c.log, logEntry{seq: c.seq, name: name})
	}
	if c.seq == before {
		return nil // nothing changed: nobody is owed anything
	}
	if keep := max(minLog, 2*len(c.resources)); len(c.log) > 2*keep {
		c.log = append([]logEntry(nil), c.log[len(c.log)-keep:]...)
	}
	for id, w := range c.watches {
		if resp := c.respond(w, false); resp != nil {
			delete(c.watches, id)
			w.ch <- resp
		}
	}
	for id, w := range c.sotw {
		delete(c.sotw, id)
		w.ch <- c.fullState(w)
	}
	return nil
}

// fullState is a SotW response with every resource the subscription
// covers, in name order (same state, same bytes). Called with mu held.
func (c *scopeCache) fullState(w *sotwWatch) cache.Response {
	resp := &discovery.DiscoveryResponse{TypeUrl: c.typeURL, VersionInfo: c.version()}
	if w.sub.IsWildcard() {
		names := make([]string, 0, len(c.resources))
		for n := range c.resources {
			names = append(names, n)
		}
		sort.Strings(names)
		resp.Resources = make([]*anypb.Any, 0, len(names))
		for _, n := range names {
			resp.Resources = append(resp.Resources, c.resources[n].any)
		}
		return &cache.PassthroughResponse{Request: w.req, DiscoveryResponse: resp}
	}
	returned := map[string]string{}
	for n := range w.sub.SubscribedResources() {
		if e, ok := c.resources[n]; ok {
			resp.Resources = append(resp.Resources, e.any)
			returned[n] = e.version
		}
	}
	return &cache.PassthroughResponse{Request: w.req, DiscoveryResponse: resp, ReturnedResources: returned}
}

// sotwOwed says whether a SotW subscription lacks the current state: a
// different version, or (naming resources) a named one it was not sent.
// Called with mu held.
func (c *scopeCache) sotwOwed(req *cache.Request, sub cache.Subscription) bool {
	if req.GetVersionInfo() != c.version() {
		return true
	}
	if sub.IsWildcard() {
		return false
	}
	for n := range sub.SubscribedResources() {
		if _, sent := sub.ReturnedResources()[n]; !sent {
			if _, ok := c.resources[n]; ok {
				return true
			}
		}
	}
	return false
}

// respond builds the response a subscription is owed, updating its version
// map, or returns nil when it is up to date (and always must not be
// answered). Called with mu held.
func (c *scopeCache) respond(w *deltaWatch, always bool) cache.DeltaResponse {
	known := w.sub.ReturnedResources()
	changed := c.changedSince(known, w.sub)
	var resp *discovery.DeltaDiscoveryResponse
	for _, name := range changed {
		e, exists := c.resources[name]
		_, has := known[name]
		switch {
		case exists && known[name] != e.version:
			if resp == nil {
				resp = &discovery.DeltaDiscoveryResponse{}
			}
			resp.Resources = append(resp.Resources, &discovery.Resource{Name: name, Version: e.version, Resource: e.any})
			known[name] = e.version
		case !exists && has:
			if resp == nil {
				resp = &discovery.DeltaDiscoveryResponse{}
			}
			resp.RemovedResources = append(resp.RemovedResources, name)
			delete(known, name)
		}
	}
	known[cursorKey] = strconv.FormatUint(c.seq, 10)
	if resp == nil && !always {
		return nil
	}
	if resp == nil {
		resp = &discovery.DeltaDiscoveryResponse{}
	}
	resp.TypeUrl = c.typeURL
	resp.SystemVersionInfo = c.version()
	return &cache.DeltaPassthroughResponse{DeltaRequest: w.req, NextVersionMap: known, DeltaDiscoveryResponse: resp}
}

// changedSince names the resources that may differ from what the
// subscription knows: the log after its cursor, or — for a new
// subscription, one that lagged past the log, or one naming resources —
// every candidate. Called with mu held.
func (c *scopeCache) changedSince(known map[string]string, sub cache.Subscription) []string {
	if !sub.IsWildcard() {
		names := make([]string, 0, len(sub.SubscribedResources()))
		for n := range sub.SubscribedResources() {
			names = append(names, n)
		}
		for n := range known {
			if _, ok := sub.SubscribedResources()[n]; !ok && n != cursorKey {
				delete(known, n) // no longer subscribed: forget it, as LinearCache does
			}
		}
		return names
	}
	cursor, err := strconv.ParseUint(known[cursorKey], 10, 64)
	if err == nil && (len(c.log) == 0 || cursor+1 >= c.log[0].seq) && cursor <= c.seq {
		// The log covers everything after the cursor.
		start := len(c.log)
		for start > 0 && c.log[start-1].seq > cursor {
			start--
		}
		names := make([]string, 0, len(c.log)-start)
		for _, e := range c.log[start:] {
			names = append(names, e.name)
		}
		return names
	}
	names := make([]string, 0, len(c.resources)+len(known))
	for n := range c.resources {
		names = append(names, n)
	}
	for n := range known {
		if _, ok := c.resources[n]; !ok && n != cursorKey {
			names = append(names, n)
		}
	}
	return names
}

// CreateDeltaWatch answers at once when the subscription is owed a change
// (or, wildcard, has had no response yet on this stream), else waits.
func (c *scopeCache) CreateDeltaWatch(req *cache.DeltaRequest, sub cache.Subscription, ch chan cache.DeltaResponse) (func(), error) {
	if req.GetTypeUrl() != c.typeURL {
		return nil, fmt.Errorf("request type %s does not match cache type %s", req.GetTypeUrl(), c.typeURL)
	}
	w := &deltaWatch{req: req, sub: sub, ch: ch}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Envoy concludes a wildcard subscription's initialization only on a
	// response, even an empty one.
	if resp := c.respond(w, sub.IsWildcard() && req.GetResponseNonce() == ""); resp != nil {
		ch <- resp
		return func() {}, nil
	}
	c.nextWatch++
	id := c.nextWatch
	c.watches[id] = w
	return func() {
		c.mu.Lock()
		delete(c.watches, id)
		c.mu.Unlock()
	}, nil
}

// CreateWatch answers a SotW request at once unless the client already
// holds the current version (its version_info, which for a NACK the
// server's callbacks set to the rejected version, so a rejected state is
// not sent again until something changes).
func (c *scopeCache) CreateWatch(req *cache.Request, sub cache.Subscription, ch chan cache.Response) (func(), error) {
	if req.GetTypeUrl() != c.typeURL {
		return nil, fmt.Errorf("request type %s does not match cache type %s", req.GetTypeUrl(), c.typeURL)
	}
	w := &sotwWatch{req: req, sub: sub, ch: ch}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sotwOwed(req, sub) {
		ch <- c.fullState(w)
		return func() {}, nil
	}
	c.nextWatch++
	id := c.nextWatch
	c.sotw[id] = w
	return func() {
		c.mu.Lock()
		delete(c.sotw, id)
		c.mu.Unlock()
	}, nil
}

// Fetch is not served (REST).
func (c *scopeCache) Fetch(context.Context, *cache.Request) (cache.Response, error) {
	return nil, errors.New("REST fetch is not supported")
}
