package approvals

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Page sizes of list endpoints.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// cursor is where a page ended: lists are newest first, then by id, so
// the next page starts after (created, id).
type cursor struct {
	created time.Time
	id      string
}

func (c cursor) String() string {
	raw := strconv.FormatInt(c.created.UnixNano(), 10) + ":" + c.id
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// parseCursor reads a cursor given back by a previous page.
func parseCursor(s string) (cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) > 200 {
		return cursor{}, fmt.Errorf("cursor %.40q is not one this API handed out", s)
	}
	ns, id, ok := strings.Cut(string(b), ":")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || id == "" || !printableASCII(id) {
		return cursor{}, fmt.Errorf("cursor %.40q is not one this API handed out", s)
	}
	return cursor{created: time.Unix(0, n), id: id}, nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// after reports whether an item (created, id) comes after c in list order.
func (c cursor) after(created time.Time, id string) bool {
	if cmp := created.Compare(c.created); cmp != 0 {
		return cmp < 0
	}
	return id > c.id
}

// pageParams are the paging query parameters: limit and cursor.
type pageParams struct {
	limit int
	from  *cursor
}

func parsePage(q url.Values) (pageParams, *apiError) {
	p := pageParams{limit: DefaultPageSize}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxPageSize {
			return p, newError(http.StatusBadRequest, "invalid", fmt.Sprintf("limit %.20q: want a number from 1 to %d", s, MaxPageSize))
		}
		p.limit = n
	}
	if s := q.Get("cursor"); s != "" {
		c, err := parseCursor(s)
		if err != nil {
			return p, newError(http.StatusBadRequest, "invalid", err.Error())
		}
		p.from = &c
	}
	return p, nil
}

// paginate keeps the items after the cursor that keep() accepts, up to
// the limit, and returns the cursor of the next page ("" at the end).
func paginate[T any](items []T, p pageParams, key func(T) (time.Time, string), keep func(T) bool) ([]T, string) {
	out := make([]T, 0, min(len(items), p.limit))
	for _, it := range items {
		created, id := key(it)
		if p.from != nil && !p.from.after(created, id) {
			continue
		}
		if !keep(it) {
			continue
		}
		if len(out) == p.limit {
			last, lastID := key(out[len(out)-1])
			return out, cursor{created: last, id: lastID}.String()
		}
		out = append(out, it)
	}
	return out, ""
}

// splitList reads a repeatable, comma-separated query parameter.
func splitList(q url.Values, name string) []string {
	var out []string
	for _, v := range q[name] {
		for s := range strings.SplitSeq(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}
