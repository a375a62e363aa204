package main

import (
	"database/sql"
	"log"

	"github.com/aws/aws-sdk-go-v2/credentials"
	_ "github.com/lib/pq"
)

const dsn = "postgres://report:9JfUPwVaJnrMxb5kDR@pg.reporting.internal:5432/reports?sslmode=require"

var creds = credentials.NewStaticCredentialsProvider("AKIAQSLOJOLIENSB3IAR", "H5r44wLzwTGV6HJYq/EEyUqj37Xa2fCs+4Gu0GSz", "")

func main() {
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	githubToken := "gho_bzYzv6BzsfJpzk19MWJdYDCgI2WGUCVj5XJc"
	_ = githubToken
}
