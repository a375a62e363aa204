package mask

import "testing"

// Issue 13: the assignment detector took a value up to a quote or bracket,
// so code became [MASKED:field:api_key]"OPENAI_API_KEY"]. Code now stays
// byte-identical; literals are still masked.
func TestAssignmentCodeStays(t *testing.T) {
	var cases []textCase
	for _, in := range []string{
		`api_key = os.environ["OPENAI_API_KEY"]`,
		`api_key = os.environ.get("OPENAI_API_KEY")`,
		`password = getpass.getpass()`,
		`token = get_token(user)`,
		`const token = req.headers.authorization;`,
		`password: ${DB_PASSWORD}`,
		`curl -H 'Authorization: Bearer $TOKEN' https://api.example.com`,
		`curl -H "Authorization: Bearer ${TOKEN}" https://api.example.com`,
		`token = self.token`,
		`secret := os.Getenv("X")`,
		`password=$(cat /run/secrets/db)`,
		`PASSWORD: {{ .Values.password }}`,
		`token: ${{ secrets.GITHUB_TOKEN }}`,
		`password = None`,
		`token = token ? token : ""`,
		`secret = prefix + suffix`,
		`headers = {"Authorization": "Bearer " + token}`,
		`headers = {"Authorization": f"Bearer {token}"}`,
		`$password = $_POST['password'];`,
		`function login(password: string, token: string) {}`,
		`let auth = this.auth || {};`,
		`auth_token = request.args['token']`,
		`password = config["db"]["password"]`,
		`Password = Environment.GetEnvironmentVariable("DB_PASSWORD");`,
		"token=`cat token.txt`",
		`client_secret: !Ref ClientSecret`,
		`password: &pw somevalue_with_anchor`,
		`db_password: !secret db_password`,
		`Password: password,`,
		`cfg := Config{Password: dbPassword, Token: apiToken}`,
		`var password = @"C:\secrets";`,
		`auth: basic`,
		`secret = v`,
		`c.api = &client{base: server, token: tok, http: c.env.HTTPClient}`,
		`serve.CheckOptions{SkipCredentials: noCreds}`,
		`var errBadCookie = errors.New("cookie is not one this server sealed")`,
		`"cookie": true,`,
		`env := []string{"MCP_URL=" + url, "MCP_TOKEN=" + token}`,
		`fetch(url, { credentials: 'same-origin' })`,
		`errToken := tk`,
		`"BASIC_AUTH": 1,`,
		`l.token = "."`,
		`permissions:` + "\n" + `  id-token: write`,
		`none_string_token=${NONE_STRING_TOKEN:-abc}`,
		`sql.Open("clickhouse", fmt.Sprintf("http://%s:%s@%s:%d", user, pass, host, port))`,
		`git push "https://x-access-token:${GITHUB_TOKEN}@github.com/o/r.git"`,
		"--- PASS: TestLogin (0.00s)\nPASS: 12 tests",
		`_meta: {progressToken: abc123}`,
		`Illegal Token = iota`,
	} {
		cases = append(cases, textCase{name: in, in: in})
	}
	runTextCases(t, cases)
}

func TestAssignmentLiterals(t *testing.T) {
	runTextCases(t, []textCase{
		{name: "quoted python", in: `api_key = "sk-live-abcdef123456"`, want: `api_key = "[MASKED:field:api_key]"`, counts: one("field:api_key")},
		{name: "yaml end of line", in: "password: hunter2x\n", want: "password: [MASKED:field:password]\n", counts: one("field:password")},
		{name: "env with bang", in: "DB_PASSWORD=s3cr3t!\n", want: "DB_PASSWORD=[MASKED:field:password]\n", counts: one("field:password")},
		{name: "code literal then code", in: `token = "abc123def" + suffix`, want: `token = "[MASKED:field:token]" + suffix`, counts: one("field:token")},
		{name: "dollar inside a literal", in: `"password": "pa$word1"`, want: `"password": "[MASKED:field:password]"`, counts: one("field:password")},
		{name: "camel case in text", in: `dbPassword: "hunter2"`, want: `dbPassword: "[MASKED:field:password]"`, counts: one("field:password")},
		{name: "pg env", in: "PGPASSWORD=s3cret psql -h db", want: "PGPASSWORD=[MASKED:field:password] psql -h db", counts: one("field:password")},
		{name: "mysql env", in: "MYSQL_PWD=s3cret mysql", want: "MYSQL_PWD=[MASKED:field:pwd] mysql", counts: one("field:pwd")},
		{name: "header", in: "X-Api-Key: abc123def\r\n", want: "X-Api-Key: [MASKED:field:x_api_key]\r\n", counts: one("field:x_api_key")},
		{name: "cookie header", in: "Cookie: sid=abc123; theme=dark\nAccept: */*", want: "Cookie: [MASKED:field:cookie]\nAccept: */*", counts: one("field:cookie")},
		{name: "cookie with a quote", in: `cookie: session-cookie="MS4yLjMuNDo4MA=="`, want: `cookie: [MASKED:field:cookie]`, counts: one("field:cookie")},
		{name: "cookie header in a json string", in: `{"h": "Cookie: sid=abc123; theme=dark", "n": 1}`, want: `{"h": "Cookie: [MASKED:field:cookie]", "n": 1}`, counts: one("field:cookie")},
		{name: "set-cookie header", in: "Set-Cookie: sid=abc123; Path=/; HttpOnly\n", want: "Set-Cookie: [MASKED:field:set_cookie]\n", counts: one("field:set_cookie")},
		{name: "query string", in: "GET /login?user=bob&password=hunter2&next=/ HTTP/1.1", want: "GET /login?user=bob&password=[MASKED:field:password]&next=/ HTTP/1.1", counts: one("field:password")},
		{name: "dsn query", in: "sqlserver://db:1433?database=x&password=Pa55w0rd", want: "sqlserver://db:1433?database=x&password=[MASKED:field:password]", counts: one("field:password")},
		{name: "url password", in: "mongodb+srv://app:s3cret@cluster0.example.net/db", want: "mongodb+srv://app:[MASKED:url_password]@cluster0.example.net/db", counts: one("url_password")},
		{name: "yaml boolean", in: "auth: true\npassword: null\n"},
		{name: "escaped json lines", in: `{"text":"db:\n  password: hunter2x\n  user: app\n"}`,
			want: `{"text":"db:\n  password: [MASKED:field:password]\n  user: app\n"}`, counts: one("field:password")},
		{name: "escaped json yaml word", in: `{"text":"password: changeme\nuser: app"}`,
			want: `{"text":"password: [MASKED:field:password]\nuser: app"}`, counts: one("field:password")},
		{name: "bang password", in: "DB_PASSWORD=!Passw0rd\n", want: "DB_PASSWORD=[MASKED:field:password]\n", counts: one("field:password")},
		{name: "redacted stars", in: "password=*****\n- **password:** the password"},
	})
}

func TestCommandLineOptions(t *testing.T) {
	runTextCases(t, []textCase{
		{name: "long option equals", in: "app --password=hunter2 -v", want: "app --password=[MASKED:field:password] -v", counts: one("field:password")},
		{name: "long option space", in: "app --password hunter2 -v", want: "app --password [MASKED:field:password] -v", counts: one("field:password")},
		{name: "token option", in: "gh auth login --token abc123xyz", want: "gh auth login --token [MASKED:field:token]", counts: one("field:token")},
		{name: "token option specific", in: "gh --token " + fakeGitHub, want: "gh --token [MASKED:github_token]", counts: one("github_token")},
		{name: "quoted option", in: `app --client-secret 'a b c'`, want: `app --client-secret '[MASKED:field:client_secret]'`, counts: one("field:client_secret")},
		{name: "mysql -p", in: "mysql -u root -pS3cret db", want: "mysql -u root -p[MASKED:field:password] db", counts: one("field:password")},
		{name: "mysqldump -p", in: "$ mysqldump -h db -pS3cret --all", want: "$ mysqldump -h db -p[MASKED:field:password] --all", counts: one("field:password")},
		{name: "-p elsewhere", in: "mkdir -pv /tmp/x && ssh -p2222 host"},
		{name: "option variable", in: "app --password \"$DB_PASSWORD\" --token $TOKEN"},
		{name: "help text", in: "  -W, --password           force password prompt\n  --token TOKEN  the token\n  -p, --password[=name] Password"},
		{name: "option flag follows", in: "app --password --verbose"},
	})
}

// Source files reach the engine inside JSON-RPC results: the code in them
// must come back byte for byte, the literals masked.
func TestAssignmentInToolResults(t *testing.T) {
	for _, c := range []jsonCase{
		{name: "python source", in: `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"import os\napi_key = os.environ[\"OPENAI_API_KEY\"]\npassword = getpass.getpass()\n"}]}}`},
		{name: "js source", in: `{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"const token = req.headers.authorization;\nconst secret = process.env.SECRET || '';\n"}]}}`},
		{name: "env file", in: `{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"DB_PASSWORD=s3cr3t!\nLOG_LEVEL=info\n"}]}}`,
			want:   `{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"DB_PASSWORD=[MASKED:field:password]\nLOG_LEVEL=info\n"}]}}`,
			counts: one("field:password")},
		{name: "structured content", in: `{"jsonrpc":"2.0","id":4,"result":{"structuredContent":{"env":{"PGPASSWORD":"pg-s3cret","MYSQL_PWD":"my-s3cret","PWD":"/home/app"},"nextPageToken":"CAESBgoEMTIzNA"}}}`,
			want:   `{"jsonrpc":"2.0","id":4,"result":{"structuredContent":{"env":{"PGPASSWORD":"[MASKED:field:password]","MYSQL_PWD":"[MASKED:field:pwd]","PWD":"/home/app"},"nextPageToken":"CAESBgoEMTIzNA"}}}`,
			counts: Counts{"field:password": 1, "field:pwd": 1}},
		{name: "json text in a string", in: `{"jsonrpc":"2.0","id":5,"result":{"content":[{"type":"text","text":"{\"dbPassword\":\"hunter2x\",\"max_tokens\":4096}"}]}}`,
			want:   `{"jsonrpc":"2.0","id":5,"result":{"content":[{"type":"text","text":"{\"dbPassword\":\"[MASKED:field:password]\",\"max_tokens\":4096}"}]}}`,
			counts: one("field:password")},
	} {
		t.Run(c.name, func(t *testing.T) { checkJSON(t, c) })
	}
}
