package mask

import (
	"strings"
	"testing"
)

// Issue 13: a 40-character AWS secret access key with no AWS name next to
// it was never masked, while the access key id beside it was. It is now
// masked within awsNear bytes of an id; far from one, or a git SHA, stays.
func TestAWSSecretNearKeyID(t *testing.T) {
	const sha = "3f786850e387550fdab836ed7e6dc881de23001b"
	runTextCases(t, []textCase{
		{name: "console csv", in: "User name,Password,Access key ID,Secret access key\nbob,," + fakeAWSKeyID + "," + fakeAWSSecret + "\n",
			want:   "User name,Password,Access key ID,Secret access key\nbob,,[MASKED:aws_access_key],[MASKED:aws_secret_key]\n",
			counts: Counts{"aws_access_key": 1, "aws_secret_key": 1}},
		{name: "table", in: "| key | " + fakeAWSKeyID + " |\n| secret | " + fakeAWSSecret + " |",
			want: "| key | [MASKED:aws_access_key] |\n| secret | [MASKED:aws_secret_key] |", counts: Counts{"aws_access_key": 1, "aws_secret_key": 1}},
		{name: "secret before id", in: fakeAWSSecret + " " + fakeAWSKeyID,
			want: "[MASKED:aws_secret_key] [MASKED:aws_access_key]", counts: Counts{"aws_access_key": 1, "aws_secret_key": 1}},
		{name: "docs prose", in: "Use access key " + fakeAWSKeyID + " and\nsecret key " + fakeAWSSecret + ".",
			want: "Use access key [MASKED:aws_access_key] and\nsecret key [MASKED:aws_secret_key].", counts: Counts{"aws_access_key": 1, "aws_secret_key": 1}},
		{name: "credentials file", in: "[default]\naws_access_key_id=" + fakeAWSKeyID + "\naws_secret_access_key=" + fakeAWSSecret + "\n",
			want: "[default]\naws_access_key_id=[MASKED:aws_access_key]\naws_secret_access_key=[MASKED:aws_secret_key]\n", counts: Counts{"aws_access_key": 1, "aws_secret_key": 1}},
		{name: "aws-ish name", in: "AwsSecret: " + fakeAWSSecret, want: "AwsSecret: [MASKED:aws_secret_key]", counts: one("aws_secret_key")},
		{name: "git sha near id", in: fakeAWSKeyID + " " + sha, want: "[MASKED:aws_access_key] " + sha, counts: one("aws_access_key")},
		{name: "far from id", in: fakeAWSKeyID + strings.Repeat(" filler", 40) + " " + fakeAWSSecret,
			want: "[MASKED:aws_access_key]" + strings.Repeat(" filler", 40) + " " + fakeAWSSecret, counts: one("aws_access_key")},
		{name: "no id", in: "value " + fakeAWSSecret},
		{name: "longer blob near id", in: fakeAWSKeyID + " " + fakeAWSSecret + "AAAA",
			want: "[MASKED:aws_access_key] " + fakeAWSSecret + "AAAA", counts: one("aws_access_key")},
	})
}
