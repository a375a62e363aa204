package config

// MaskingProfile is a masking profile as configuration holds it
// (masking.profiles); package mask compiles it. A profile starts from the
// profile named in Extends (a built-in: "default", "strict", "off"; in a
// set also any profile listed before it), turns on Detectors, turns off
// DisableDetectors, and adds Keys, Paths and Patterns.
type MaskingProfile struct {
	// Name is how targets and policy decisions refer to the profile.
	Name string `yaml:"name"`
	// Extends names the profile this one starts from; empty starts from
	// nothing (no detectors, no rules).
	Extends string `yaml:"extends,omitempty"`
	// Detectors turns built-in detectors on, by name (see
	// mask.DetectorNames); "all" turns every one on.
	Detectors []string `yaml:"detectors,omitempty"`
	// DisableDetectors turns built-in detectors off, after Detectors.
	DisableDetectors []string `yaml:"disable_detectors,omitempty"`
	// Keys are names whose values are masked: JSON members (string and
	// number values) at any depth, and in text NAME=value, NAME: value,
	// --NAME value. Names are compared in words: case is ignored, words
	// split at '_', '-', '.', camelCase and known prefixes run together
	// (PGPASSWORD), and a key matches a name that ends with its words
	// ("password" matches DB_PASSWORD, dbPassword, smtp.password;
	// "client_secret" matches clientSecret and CLIENT-SECRET).
	Keys []string `yaml:"keys,omitempty"`
	// ExceptKeys are names that end with a key and are not secrets
	// (page_token: a pagination cursor), matched the same way; one written
	// "=name" matches the whole name only ("=pwd": PWD is a directory,
	// MYSQL_PWD still a password). An exception wins over a key no longer
	// than it, so a longer key (next_page_token) can take a name back.
	ExceptKeys []string `yaml:"except_keys,omitempty"`
	// Paths are JSONPath-like locations whose values (of any type) are
	// masked, e.g. $.result.structuredContent.credentials.*. Syntax: "$"
	// then segments: .name, ['name'] or ["name"] (a member), [N] (an array
	// element), .* or [*] (any member or element). Names match exactly
	// (case-sensitive). Recursive descent (..) is not supported: Keys
	// match names at any depth. Paths start at each JSON-RPC message (each
	// element of a batch) and continue into strings that hold JSON: a path
	// through $.result.content[*].text reaches members of JSON text there.
	Paths []string `yaml:"paths,omitempty"`
	// Patterns are extra detectors written as regular expressions.
	Patterns []MaskingPattern `yaml:"patterns,omitempty"`
	// NumberMask is what a masked JSON number becomes: "string" (the
	// mask as a JSON string, "[MASKED:card_number]") or "zero" (the number
	// 0, so that clients validating a typed outputSchema still accept the
	// result). Empty: as the extended profile says, else "string".
	NumberMask string `yaml:"number_mask,omitempty"`
}

// MaskingPattern is an operator-defined detector: every match of Regexp in
// a string (or text) is replaced by [MASKED:<Type>]. Each pattern costs a
// regular-expression pass over every string, unlike the built-in detectors.
type MaskingPattern struct {
	// Type is the mask type: lower-case letters, digits and '_'.
	Type string `yaml:"type"`
	// Regexp is RE2 syntax (Go regexp); it must not match the empty string.
	Regexp string `yaml:"regexp"`
}
