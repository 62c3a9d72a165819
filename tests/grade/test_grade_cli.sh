#!/bin/sh
# mmupt grade: output lines, field order, extraction, bad lines and exit codes.
# usage: test_grade_cli.sh MMUPT grade
MMUPT=$1
SUB=$2
g() { "$MMUPT" "$SUB" "$@"; }
fail=0
check() { # name expected actual
    if [ "$2" != "$3" ]; then echo "FAIL $1"; echo "  want: $2"; echo "  got:  $3"; fail=1; else echo "ok - $1"; fi
}

out=$(printf '%s\n' '{"id":1,"given":"0.5","reference":"\\frac{1}{2}"}' '' \
    '{"reference":"5","response":"so \\boxed{5}."}' '{"reference":"5","response":"no box"}' \
    '{"given":null,"reference":"None"}' | g)
check "given, response, no answer" '{"id":1,"given":"0.5","reference":"\\frac{1}{2}","extracted":"0.5","equal":true}
{"reference":"5","response":"so \\boxed{5}.","extracted":"5","equal":true}
{"reference":"5","response":"no box","extracted":null,"equal":false}
{"given":null,"reference":"None","extracted":null,"equal":false}' "$out"

out=$(echo '{"reference":"C","response":"Thus the answer is (C)."}' | g --extractor choice)
check "choice extractor" '{"reference":"C","response":"Thus the answer is (C).","extracted":"C","equal":true}' "$out"
out=$(echo '{"reference":"12","response":"So the answer is 12 cm. Done"}' | g --extractor=answer_is)
check "answer_is extractor" '{"reference":"12","response":"So the answer is 12 cm. Done","extracted":"12 cm","equal":true}' "$out"

bad() { # name input expected-stderr-substring expected-stdout-lines
    err=$(printf '%s\n' "$2" | g 2>&1 >/dev/null); rc=$?
    lines=$(printf '%s\n' "$2" | g 2>/dev/null | wc -l)
    check "$1: exit 1" 1 $rc
    case $err in *"$3"*) echo "ok - $1: message";; *) echo "FAIL $1: '$3' not in '$err'"; fail=1;; esac
    check "$1: lines before it written" "$4" "$lines"
}
good='{"given":"1","reference":"1"}'
bad "not JSON" "$good
{oops" "stdin:2:" 1
bad "missing reference" "$good
$good
{\"given\":\"1\"}" "stdin:3: missing field 'reference'" 2
bad "both" '{"given":"1","response":"x","reference":"1"}' "stdin:1: has both 'given' and 'response'" 0
bad "neither" '{"reference":"1"}' "missing field 'given' or 'response'" 0
bad "wrong type" '{"given":5,"reference":"1"}' "field 'given' must be a string" 0
bad "reference type" '{"given":"5","reference":[1]}' "field 'reference' must be a string" 0
bad "response type" '{"response":null,"reference":"1"}' "field 'response' must be a string" 0
bad "not an object" '[1,2]' "expected a JSON object" 0

g --help | grep -q 'usage: mmupt grade'; check "--help" 0 $?
g --extractor nope </dev/null 2>/dev/null; check "unknown extractor: exit 2" 2 $?
g --what </dev/null 2>/dev/null; check "unknown option: exit 2" 2 $?
exit $fail
