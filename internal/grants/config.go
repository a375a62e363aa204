package grants

import "github.com/airlock-mcp/airlock/internal/config"

// Config is the grants section of airlock.yaml. It is defined, defaulted
// and validated in package config (which every part of airlock may
// import); its errors are *config.FieldError.
type Config = config.Grants

// Defaults returns the grants configuration used when nothing is set.
func Defaults() Config { return config.GrantsDefaults() }
