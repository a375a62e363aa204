package audit

import "time"

// Retention drops whole days, in the embedded store (day files) and in
// ClickHouse (day partitions) alike: it is the cheapest way either
// deletes data and takes a changed retention_days into account at the
// next sweep. A day D is dropped once every row in it is older than
// retention_days, so between N and N+1 days are kept.

// RetentionCutoff returns the first day (yyyymmdd) kept at now.
func RetentionCutoff(now time.Time, days int) uint32 {
	d := now.UTC().AddDate(0, 0, -days)
	return uint32(d.Year()*10000 + int(d.Month())*100 + d.Day())
}

// nsTime is the time of ns nanoseconds since the Unix epoch, with 0 the
// zero time (as the codec and the tables store times).
func nsTime(ns uint64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(ns)).UTC()
}
