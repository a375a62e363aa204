package clickhouse

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// DocQuery is one "### Title" heading and the ```sql block under it in a
// Markdown file: the SQL the docs show analysts, which tests run.
type DocQuery struct {
	Title, SQL string
}

// DocQueries reads the SQL examples of the Markdown file at path, in
// order. A sql block before any ### heading, or no block at all, is an
// error: every example must be findable by its title.
func DocQueries(path string) ([]DocQuery, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		out   []DocQuery
		title string
		sql   []string
		in    bool
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case in && line == "```":
			out = append(out, DocQuery{Title: title, SQL: strings.Join(sql, "\n")})
			in, sql = false, nil
		case in:
			sql = append(sql, line)
		case line == "```sql":
			if title == "" {
				return nil, fmt.Errorf("%s: a sql block before any ### heading", path)
			}
			in = true
		case strings.HasPrefix(line, "### "):
			title = strings.TrimPrefix(line, "### ")
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no sql blocks", path)
	}
	return out, nil
}
