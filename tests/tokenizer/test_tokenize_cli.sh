#!/usr/bin/env bash
# `mmupt tokenize` as a user meets it: help, usage errors, exact byte round trips through encode
# and decode (trailing whitespace, CRLF, invalid UTF-8), the output format, and bad ids.
# usage: test_tokenize_cli.sh SOURCE_ROOT CMD...   (CMD: "mmupt tokenize", or the stand-alone driver)
set -u
root=$1
shift
tokenize=("$@")
. "$root/tests/lib.sh"
small=$root/tests/fixtures/tokenizer/small/legacy_merges.json  # no normalizer: decode(encode(x)) == x
nfc=$root/tests/fixtures/tokenizer/small/tokenizer.json

run "${tokenize[@]}" --help;           expect "--help" 0 "usage: mmupt tokenize" "--skip-special"
run "${tokenize[@]}";                  expect "no tokenizer is a usage error" 2 "--tokenizer FILE is required"
run "${tokenize[@]}" --tokenizer;      expect "missing value" 2 "missing value after '--tokenizer'"
run "${tokenize[@]}" --tokenizer "$small" --bogus; expect "unknown flag" 2 "unknown argument '--bogus'"
run "${tokenize[@]}" --tokenizer "$small" --skip-special; expect "--skip-special needs --decode" 2 "only applies with --decode"
run "${tokenize[@]}" --tokenizer "$tmp/none.json" </dev/null; expect "missing tokenizer" 1 "none.json: cannot open"
echo '{"model": {"type": "WordPiece"}}' >"$tmp/bad.json"
run "${tokenize[@]}" --tokenizer "$tmp/bad.json" </dev/null; expect "bad tokenizer" 1 "bad.json: model.type 'WordPiece'"

# Encode then decode gives back the exact bytes.
roundtrip() {
    local name=$1
    printf '%b' "$2" >"$tmp/in"
    if "${tokenize[@]}" --tokenizer "$small" <"$tmp/in" >"$tmp/ids" 2>"$tmp/err" &&
        "${tokenize[@]}" --tokenizer "$small" --decode <"$tmp/ids" >"$tmp/back" 2>>"$tmp/err" &&
        cmp -s "$tmp/in" "$tmp/back"; then ok "round trip: $name"
    else fail "round trip: $name" "$(od -c "$tmp/back" | head -3)" "$(cat "$tmp/err")"; fi
}
roundtrip "prose" "Hello, world! It's a test."
roundtrip "trailing whitespace" "text with trailing spaces   \n\n\t \n"
roundtrip "only newlines" "\n\n\n"
roundtrip "CRLF" "one\r\ntwo\r\n"
roundtrip "special tokens" "<|im_start|>user\nhi<|im_end|>\n"
roundtrip "UTF-8" "caf\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80"
roundtrip "control bytes" "\x01\x02\x1b[0m\x7f"

# Invalid UTF-8 comes back as U+FFFD, as Python's decode(errors='replace') gives it.
printf 'a\xffb\xe4\xbd' | "${tokenize[@]}" --tokenizer "$small" >"$tmp/ids" 2>"$tmp/err"
"${tokenize[@]}" --tokenizer "$small" --decode <"$tmp/ids" >"$tmp/back" 2>>"$tmp/err"
printf 'a\xef\xbf\xbdb\xef\xbf\xbd' >"$tmp/want"
if cmp -s "$tmp/back" "$tmp/want"; then ok "invalid UTF-8 becomes U+FFFD"
else fail "invalid UTF-8 becomes U+FFFD" "$(od -c "$tmp/back" | head -3)" "$(cat "$tmp/err")"; fi

# The output format: ids on one line, single spaces, one final newline; empty input, empty line.
printf 'ab ab' | "${tokenize[@]}" --tokenizer "$small" >"$tmp/ids"
if grep -qxE '[0-9]+( [0-9]+)*' "$tmp/ids" && [ "$(wc -l <"$tmp/ids")" = 1 ]; then ok "one line of ids"
else fail "one line of ids" "$(od -c "$tmp/ids" | head -3)"; fi
"${tokenize[@]}" --tokenizer "$small" </dev/null >"$tmp/ids"
if [ "$(od -An -c "$tmp/ids" | tr -d ' ')" = '\n' ]; then ok "empty input prints an empty line"
else fail "empty input prints an empty line" "$(od -c "$tmp/ids")"; fi
"${tokenize[@]}" --tokenizer "$small" --decode </dev/null >"$tmp/back"
if [ ! -s "$tmp/back" ]; then ok "no ids decode to nothing"; else fail "no ids decode to nothing"; fi

# NFC happens on encode (the small tokenizer.json has an NFC normalizer).
printf 'e\xcc\x81' | "${tokenize[@]}" --tokenizer "$nfc" | "${tokenize[@]}" --tokenizer "$nfc" --decode >"$tmp/back"
printf '\xc3\xa9' >"$tmp/want"
if cmp -s "$tmp/back" "$tmp/want"; then ok "NFC on encode"; else fail "NFC on encode" "$(od -c "$tmp/back")"; fi

# --skip-special drops special tokens only.
printf '<|im_start|>hi<|im_end|>' | "${tokenize[@]}" --tokenizer "$small" >"$tmp/ids"
run "${tokenize[@]}" --tokenizer "$small" --decode --skip-special <"$tmp/ids"
if [ "$rc" = 0 ] && [ "$(cat "$tmp/out")" = "hi" ]; then ok "--skip-special"; else fail "--skip-special" "$(cat "$tmp/out" "$tmp/err")"; fi

# Bad ids: exit 1, naming the position.
bad_ids() {
    printf '%s' "$2" >"$tmp/ids"
    run "${tokenize[@]}" --tokenizer "$small" --decode <"$tmp/ids"
    expect "bad ids: $1" 1 "$3"
    [ ! -s "$tmp/out" ] || fail "bad ids: $1 writes nothing" "$(cat "$tmp/out")"
}
bad_ids "not a number" "12 abc 5" "id #1 ('abc', at byte 3 of the input) is not a token id"
bad_ids "negative" "1 -1" "id #1 ('-1', at byte 2"
bad_ids "too large" "$(printf '1\n2\n99999999999')" "id #2 ('99999999999', at byte 4"
bad_ids "past the vocab" "300 400" "id #1 ('400'"
bad_ids "hex" "0x10" "id #0 ('0x10'"
printf ' 72\n\t101 \n' | "${tokenize[@]}" --tokenizer "$small" --decode >"$tmp/back"
if [ "$(cat "$tmp/back")" = "$("${tokenize[@]}" --tokenizer "$small" --decode <<<'72 101')" ]; then ok "any whitespace separates ids"
else fail "any whitespace separates ids" "$(od -c "$tmp/back")"; fi

finish
