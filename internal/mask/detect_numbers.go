package mask

import (
	"fmt"
	"strings"
)

// Detectors for numbers: payment cards (Luhn-checked) and phone numbers.

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// numEndOK reports whether a number ending at e stands alone: not followed
// by a word byte or by a decimal part. A comma may follow (CSV).
func numEndOK(s []byte, e int) bool {
	if e >= len(s) {
		return true
	}
	c := s[e]
	return !is(c, cWord) && !(c == '.' && e+1 < len(s) && isDigit(s[e+1]))
}

// fireDigit looks at a run of digits (with single spaces or dashes between
// them) from its first digit: a payment card number, or (strict) a
// ddd-ddd-dddd phone number. The whole run is skipped either way.
func (p *Profile) fireDigit(s []byte, i, floor int, ms []match) ([]match, int) {
	if i > 0 && (is(s[i-1], cWord) || s[i-1] == '.') {
		return ms, run(s, i, cWord)
	}
	var digits [19]byte
	j, nd := i, 0
	for j < len(s) {
		c := s[j]
		if isDigit(c) {
			if nd < len(digits) {
				digits[nd] = c - '0'
			}
			nd++
			j++
			continue
		}
		if (c == ' ' || c == '-') && j+1 < len(s) && isDigit(s[j+1]) {
			j++
			continue
		}
		break
	}
	if i < floor {
		return ms, j
	}
	if p.on(dCard) && nd >= 13 && nd <= 19 && numEndOK(s, j) && cardNumber(digits[:nd]) {
		return append(ms, match{i, j, "card_number"}), j
	}
	if p.on(dPhone) {
		if e, ok := phoneNANP(s, i); ok {
			return append(ms, match{i, e, "phone"}), e
		}
	}
	return ms, j
}

// cardNumber reports whether d (digit values) is a plausible payment card
// number: a known network prefix with a length that network issues, not
// one digit repeated, and a valid Luhn check digit.
func cardNumber(d []byte) bool {
	if !cardLength(d) {
		return false
	}
	same := true
	for _, c := range d[1:] {
		same = same && c == d[0]
	}
	return !same && luhn(d)
}

// cardLength reports whether d starts with a card network's prefix and
// has a length that network issues (ISO/IEC 7812 issuer ranges as the
// networks publish them): Visa 4… 13, 16 or 19 digits; Mastercard
// 51–55… and 2221–2720… 16; Maestro's other 5… 13–19; American Express
// 34…/37… 15; Diners Club 30…, 36…, 38…, 39… 14–19; JCB 35… 16–19;
// Discover, UnionPay, RuPay, Maestro 6… 13–19. Luhn-valid IDs with other
// shapes are not cards: an IMEI is 15 digits, Luhn-checked by design,
// and its reporting body (35, 44, 45, 49, 51–54, 86, 99, …) never makes
// it one of these (IMEIs of body 30 or 50 remain indistinguishable).
func cardLength(d []byte) bool {
	n := len(d)
	two := int(d[0])*10 + int(d[1])
	switch d[0] {
	case 2:
		iin := two*100 + int(d[2])*10 + int(d[3])
		return iin >= 2221 && iin <= 2720 && n == 16
	case 3:
		switch two {
		case 34, 37:
			return n == 15
		case 30, 36, 38, 39:
			return n >= 14
		case 35:
			return n >= 16
		}
		return false
	case 4:
		return n == 13 || n == 16 || n == 19
	case 5:
		if two >= 51 && two <= 55 {
			return n == 16
		}
		return true
	case 6:
		return true
	}
	return false
}

// luhn reports whether d passes the Luhn (mod 10) check.
func luhn(d []byte) bool {
	sum := 0
	double := false
	for k := len(d) - 1; k >= 0; k-- {
		v := int(d[k])
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}

// digitsAt reports whether s[i:i+n] are n digits.
func digitsAt(s []byte, i, n int) bool {
	if i+n > len(s) {
		return false
	}
	for _, c := range s[i : i+n] {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

// phoneNANP matches ddd-ddd-dddd or ddd.ddd.dddd at i.
func phoneNANP(s []byte, i int) (int, bool) {
	if !digitsAt(s, i, 3) || i+3 >= len(s) {
		return 0, false
	}
	sep := s[i+3]
	if (sep != '-' && sep != '.') || !digitsAt(s, i+4, 3) || i+7 >= len(s) || s[i+7] != sep || !digitsAt(s, i+8, 4) {
		return 0, false
	}
	return i + 12, numEndOK(s, i+12)
}

// phoneParen matches (ddd) ddd-dddd, (ddd)ddd-dddd and (ddd) ddd.dddd at i.
func phoneParen(s []byte, i, floor int, ms []match) ([]match, int) {
	if i < floor || (i > 0 && is(s[i-1], cWord)) || !digitsAt(s, i+1, 3) || i+4 >= len(s) || s[i+4] != ')' {
		return ms, i + 1
	}
	j := i + 5
	if j < len(s) && s[j] == ' ' {
		j++
	}
	if !digitsAt(s, j, 3) || j+3 >= len(s) || (s[j+3] != '-' && s[j+3] != '.' && s[j+3] != ' ') || !digitsAt(s, j+4, 4) || !numEndOK(s, j+8) {
		return ms, i + 1
	}
	return append(ms, match{i, j + 8, "phone"}), j + 8
}

// phonePlus matches +<8-15 digits> with single spaces, dashes, dots or
// parentheses between groups at i (the '+').
func phonePlus(s []byte, i, floor int, ms []match) ([]match, int) {
	if i < floor || (i > 0 && is(s[i-1], cWord|cB64Std)) || i+1 >= len(s) || !isDigit(s[i+1]) {
		return ms, i + 1
	}
	j, nd, end := i+1, 0, i+1
	for j < len(s) {
		if isDigit(s[j]) {
			nd++
			j++
			end = j
			continue
		}
		k := j
		for k < len(s) && k-j < 2 && strings.IndexByte(" -.()", s[k]) >= 0 {
			k++
		}
		if k == j || k >= len(s) || !isDigit(s[k]) {
			break
		}
		j = k
	}
	if nd < 8 || nd > 15 || !numEndOK(s, end) {
		return ms, end
	}
	return append(ms, match{i, end, "phone"}), end
}

// cardWord reports whether a word of a member name (lower case) says it
// holds a payment card number; cardWhole the same of a whole name written
// without word breaks.
func cardWord(w []byte) bool {
	switch string(w) {
	case "card", "cards", "pan", "cc", "ccn", "creditcard", "debitcard", "cardnumber", "cardnumbers":
		return true
	}
	return false
}

func cardWhole(w []byte) bool {
	switch string(w) {
	case "cardnumber", "cardnumbers", "cardno", "cardnum", "ccnumber", "ccnum", "ccno", "creditcard",
		"creditcardnumber", "debitcard", "debitcardnumber", "primaryaccountnumber", "pan":
		return true
	}
	return false
}

// cardName reports whether a JSON member name says the value is a payment
// card number: one of its words (split at '_', '-', '.', ' ' and at
// camelCase humps, case folded) is card, pan, cc, ccn, creditcard …, or
// the whole name run together is cardnumber, ccnum, creditcardnumber,
// primaryaccountnumber and the like. card_number, cardNumber, CARD-NO,
// pan, cc_number, creditCardNumber say so; id, imei, created_at,
// scorecard_total, span do not.
func cardName(name []byte) bool {
	if len(name) > maxKeyLen {
		return false
	}
	var whole, word [maxKeyLen]byte
	nw, n := 0, 0
	hit := false
	end := func() {
		if n > 0 && cardWord(word[:n]) {
			hit = true
		}
		n = 0
	}
	for i, c := range name {
		switch {
		case c == '_' || c == '-' || c == '.' || c == ' ':
			end()
			continue
		case 'A' <= c && c <= 'Z':
			if i > 0 && 'a' <= name[i-1] && name[i-1] <= 'z' {
				end()
			}
			c += 'a' - 'A'
		}
		word[n], whole[nw] = c, c
		n++
		nw++
	}
	end()
	return hit || cardWhole(whole[:nw])
}

// Values of ProfileConfig.NumberMask.
const (
	NumberMaskString = "string"
	NumberMaskZero   = "zero"
)

// compileNumberMask resolves the profile's number_mask (inherited from
// the profile it extends when empty) into p.
func (p *Profile) compileNumberMask(c ProfileConfig, lookup func(string) (*Profile, bool)) error {
	nm := c.NumberMask
	if nm == "" && c.Extends != "" {
		if base, ok := lookup(c.Extends); ok {
			nm = base.cfg.NumberMask
		}
	}
	switch nm {
	case "", NumberMaskString:
		nm = NumberMaskString
	case NumberMaskZero:
		p.numZero = true
	default:
		return fmt.Errorf("number_mask %q: must be %q or %q", c.NumberMask, NumberMaskString, NumberMaskZero)
	}
	p.cfg.NumberMask = nm
	return nil
}
