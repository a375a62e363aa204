package server

import (
	"net/http"
	"os"
)

// Config holds what the server reads at start.
type Config struct {
	Password  string `json:"password"`
	Token     string `json:"token"`
	SecretKey string `json:"secret_key"`
}

func load() Config {
	return Config{
		Password:  os.Getenv("DB_PASSWORD"),
		Token:     os.Getenv("API_TOKEN"),
		SecretKey: os.Getenv("SECRET_KEY"),
	}
}

func handler(w http.ResponseWriter, r *http.Request) {
	token := r.Header.Get("Authorization")
	if token == "" {
		http.Error(w, "missing token", http.StatusUnauthorized)
		return
	}
	password := r.FormValue("password")
	_ = password
}
