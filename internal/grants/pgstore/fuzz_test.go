package pgstore

import "testing"

// ParseDSN never panics, and its error never repeats what it was given
// (a DSN holds a password).
func FuzzParseDSN(f *testing.F) {
	for _, s := range []string{
		"postgres://airlock:pw@127.0.0.1:5432/airlock?sslmode=disable",
		"host=db user=airlock password='p w' dbname=airlock",
		"postgres://a:b@[::1]:bad/x", "password=secret port=x", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		_, err := ParseDSN(dsn)
		if err != nil && err != ErrBadDSN { //nolint:errorlint // the very value: nothing of the input wrapped in
			t.Fatalf("ParseDSN's error depends on the DSN: %v", err)
		}
	})
}
