package mask

import (
	"strings"
	"testing"
)

// TestJSONNumbersKeepTheirType: a JSON number is a card number only under
// a member name that says card/PAN. IDs, IMEIs, timestamps and other
// 13–19 digit Luhn-valid numbers with a card prefix pass as they are
// (they used to become the string "[MASKED:card_number]", which broke
// typed structuredContent); card numbers inside strings are still masked.
func TestJSONNumbersKeepTheirType(t *testing.T) {
	zero := mustCompile(t, ProfileConfig{Name: "zero", Extends: DefaultProfile, NumberMask: NumberMaskZero})
	for _, tc := range []struct {
		name string
		p    *Profile
		in   string
		want string
	}{
		{"id", Default(), `{"id":4111111111111111,"result":{"id":4111111111111111}}`, ""},
		{"imei", Default(), `{"imei":490154203237518,"device":{"imei":356938035643809}}`, ""},
		{"timestamp and ids", Default(), `{"created_at":4111111111111111,"order_id":5555555555554444,"items":[4111111111111111]}`, ""},
		{"scorecard is not card", Default(), `{"scorecard_total":4111111111111111,"span":4111111111111111}`, ""},
		{"pan", Default(), `{"pan":4111111111111111}`, `{"pan":"[MASKED:card_number]"}`},
		{"cc_number", Default(), `{"cc_number":5555555555554444}`, `{"cc_number":"[MASKED:card_number]"}`},
		// creditCardNumber ends with the key rule card_number (key rules
		// match names in words), so the field rule masks it first.
		{"creditCardNumber", Default(), `{"creditCardNumber":4111111111111111}`, `{"creditCardNumber":"[MASKED:field:card_number]"}`},
		{"cardPAN", Default(), `{"cardPAN":4111111111111111}`, `{"cardPAN":"[MASKED:card_number]"}`},
		{"array under a card name", Default(), `{"card_numbers":[4111111111111111,12,{"id":4111111111111111}]}`, `{"card_numbers":["[MASKED:card_number]",12,{"id":4111111111111111}]}`},
		{"not Luhn-valid under a card name", Default(), `{"pan":4111111111111112}`, ""},
		{"card in a string still masked", Default(), `{"note":"card 4111111111111111"}`, `{"note":"card [MASKED:card_number]"}`},
		{"zero: card number", zero, `{"pan":4111111111111111,"id":4111111111111111}`, `{"pan":0,"id":4111111111111111}`},
		{"zero: key rule on a number", zero, `{"card_number":4111111111111111,"cvv":123}`, `{"card_number":0,"cvv":0}`},
		{"zero: strings stay string masks", zero, `{"card_number":"4111111111111111","password":"x"}`, `{"card_number":"[MASKED:field:card_number]","password":"[MASKED:field:password]"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, counts, err := tc.p.MaskJSON([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			if want == "" {
				want = tc.in
				if len(counts) != 0 {
					t.Errorf("counts %v for a document with nothing to mask", counts)
				}
			}
			if string(out) != want {
				t.Errorf("got  %s\nwant %s", out, want)
			}
			again, c2, _ := tc.p.MaskJSON(out)
			if string(again) != string(out) || len(c2) != 0 {
				t.Errorf("not idempotent: %s %v", again, c2)
			}
		})
	}
}

func TestNumberMaskInherited(t *testing.T) {
	set, err := NewSet([]ProfileConfig{
		{Name: "zero", Extends: DefaultProfile, NumberMask: NumberMaskZero},
		{Name: "child", Extends: "zero"},
	})
	if err != nil {
		t.Fatal(err)
	}
	child, _ := set.Get("child")
	if out, _, _ := child.MaskJSON([]byte(`{"pan":4111111111111111}`)); string(out) != `{"pan":0}` {
		t.Errorf("child of a zero profile: %s", out)
	}
	if got := child.Config().NumberMask; got != NumberMaskZero {
		t.Errorf("Config().NumberMask %q", got)
	}
	if got := Default().Config().NumberMask; got != NumberMaskString {
		t.Errorf("default NumberMask %q, want string", got)
	}
	if _, err := Compile(ProfileConfig{Name: "bad", NumberMask: "null"}); err == nil || !strings.Contains(err.Error(), "number_mask") {
		t.Errorf("bad number_mask: %v", err)
	}
}

func TestCardName(t *testing.T) {
	for name, want := range map[string]bool{
		"card_number": true, "cardNumber": true, "CARD-NO": true, "pan": true, "PAN": true, "cc_number": true,
		"ccnum": true, "creditCardNumber": true, "credit_card": true, "cardnumber": true, "primary_account_number": true,
		"card": true, "debitCard": true,
		"id": false, "imei": false, "created_at": false, "scorecard_total": false, "span": false, "company": false,
		"panel": false, "account_number": false, "cancel": false, "": false,
	} {
		if got := cardName([]byte(name)); got != want {
			t.Errorf("cardName(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestCardNetworkLengths: a card number has a length its network issues.
// IMEIs are 15 digits and Luhn-valid by design; written as strings
// ("imei": "356938035643809") or in prose they used to be masked as
// cards. Card numbers of every network, in text, still are.
func TestCardNetworkLengths(t *testing.T) {
	var cases []textCase
	for _, card := range []string{
		"4111111111111111",    // Visa 16
		"4222222222222",       // Visa 13
		"4111111111111111110", // Visa 19 (Luhn-valid)
		"5555555555554444",    // Mastercard
		"2223003122003222",    // Mastercard 2-series
		"378282246310005",     // American Express 15
		"371449635398431",     // American Express 15
		"30569309025904",      // Diners Club 14
		"38520000023237",      // Diners Club 14
		"3530111333300000",    // JCB 16
		"6011111111111117",    // Discover
		"6200000000000005",    // UnionPay
		"3782 822463 10005",   // American Express, grouped
	} {
		cases = append(cases, textCase{name: "card " + card, in: "pay with " + card + " now",
			want: "pay with [MASKED:card_number] now", counts: one("card_number")})
	}
	for _, id := range []string{
		"356938035643809",     // IMEI, reporting body 35 (JCB issues 16–19 digits)
		"490154203237518",     // IMEI, body 49 (Visa issues 13, 16, 19)
		"352736477892437",     // IMEI
		"510000000000003",     // 15 digits, Mastercard prefix (Mastercard issues 16)
		"3400000000000000",    // 16 digits, American Express prefix (Amex issues 15)
		"3100000000000003",    // 31… is no network's
		"2221000000000009001", // 19 digits, Mastercard 2-series prefix
	} {
		cases = append(cases, textCase{name: "not a card " + id, in: `{"imei": "` + id + `", "note": "device ` + id + `"}`})
	}
	runTextCases(t, cases)
	out, counts, err := Default().MaskJSON([]byte(`{"devices":[{"imei":"356260017327735","imei_number":356260017327735}]}`))
	if err != nil || len(counts) != 0 {
		t.Errorf("IMEIs in JSON masked: %s %v %v", out, counts, err)
	}
}
