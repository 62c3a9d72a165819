#!/usr/bin/env bash
# The mmupt binary as a user meets it: help texts, exit codes, `mmupt config` output and round
# trip, and every bad-input fixture through the real command line.
# usage: test_cli.sh MMUPT SOURCE_ROOT
set -u
mmupt=$1
root=$2
. "$root/tests/lib.sh"

run "$mmupt" --help;            expect "help" 0 "commands:" "config" "synth"
if grep -q "planned, not in this build yet" "$tmp/out"; then fail "no planned header when every command is built"
else ok "no planned header when every command is built"; fi
run "$mmupt";                   expect "no command is a usage error" 2 "usage: mmupt <command>"
run "$mmupt" confg;             expect "unknown command suggests" 2 "unknown command 'confg' (did you mean 'config'?)"
for c in train config version eval synth; do
    run "$mmupt" $c --help;     expect "$c --help" 0 "usage: mmupt $c"
done
run "$mmupt" train --help;      expect "train --help names the GPU switches and their page" 0 "MMUPT_ATTENTION" \
    "docs/running-at-scale.md"
run "$mmupt" version;           expect "version lists libraries" 0 "libyaml" "hdf5" "mpi" "cuda"
run "$mmupt" version extra;     expect "version rejects arguments" 2 "usage: mmupt version"

run "$mmupt" config "$root/configs/quickstart.yaml" optim.lr=2e-6
expect "config with override" 0 "lr: 2.0e-06" "name: \"quickstart\"" "n: 8"
run "$mmupt" config --list;     expect "config --list" 0 "optim.lr" "default 1.0e-06, [0, 1]"
run "$mmupt" config --comments; expect "config --comments" 0 "  lr: 1.0e-06  # Peak learning rate."
run "$mmupt" config a.yaml b.yaml; expect "two files is a usage error" 2 "unexpected argument 'b.yaml'"
run "$mmupt" config --bogus;    expect "unknown option is a usage error" 2 "unknown or misplaced option '--bogus'"
run "$mmupt" config --list x.yaml; expect "--list takes no file" 2 "misplaced option '--list'"
run "$mmupt" train;             expect "train needs a file" 2 "a config file is required"

# The printed config is a config: resolving it again prints the same text.
for f in "$root"/configs/*.yaml; do
    name=$(basename "$f")
    "$mmupt" config "$f" rollout.seed=7 >"$tmp/a.yaml" 2>"$tmp/err" && "$mmupt" config "$tmp/a.yaml" >"$tmp/b.yaml" 2>>"$tmp/err"
    if cmp -s "$tmp/a.yaml" "$tmp/b.yaml" && grep -q "seed: 7" "$tmp/a.yaml"; then ok "round trip $name"
    else fail "round trip $name" "$(diff "$tmp/a.yaml" "$tmp/b.yaml" | head -5)" "$(cat "$tmp/err")"; fi
done

# docs/configuration.md is generated from the table and must not drift from it.
"$mmupt" config --doc >"$tmp/doc.md"
if cmp -s "$tmp/doc.md" "$root/docs/configuration.md"; then ok "docs/configuration.md is current"
else fail "docs/configuration.md is current" "regenerate: build/mmupt config --doc > docs/configuration.md"; fi

# Every bad-input fixture: exit 1, nothing on stdout, the expected pieces on stderr.
for f in "$root"/tests/fixtures/config/bad/*.yaml; do
    name=$(basename "$f" .yaml)
    if [ -s "$f" ]; then expects=$(head -1 "$f" | sed 's/^# expect: //'); else expects="is empty"; fi
    run "$mmupt" config "$f"
    pieces=()
    while IFS= read -r p; do p=$(echo "$p" | sed 's/^ *//; s/ *$//'); [ -n "$p" ] && pieces+=("$p"); done \
        < <(echo "$expects" | sed 's/ && /\n/g')
    if [ -s "$tmp/out" ]; then fail "bad file $name" "printed a config despite the error"; continue; fi
    expect "bad file $name" 1 "mmupt config: error:" "${pieces[@]}"
done

run "$mmupt" config /nonexistent.yaml;  expect "missing file" 1 "/nonexistent.yaml: cannot open: No such file or directory"
run "$mmupt" config "$root/configs";    expect "directory" 1 "is a directory"
run "$mmupt" config "$root/configs/quickstart.yaml" optim.lrr=1;   expect "override unknown key" 1 "did you mean 'optim.lr'?"
run "$mmupt" config "$root/configs/quickstart.yaml" rollout.n=many; expect "override wrong type" 1 "override rollout.n: expected an integer, got 'many'"
run "$mmupt" config "$root/configs/quickstart.yaml" rollout.n=0;    expect "override out of range" 1 "0 is out of range"
run "$mmupt" config "$root/configs/quickstart.yaml" =5;             expect "override syntax" 1 "the key before '=' is empty"
run "$mmupt" config "$root/configs/quickstart.yaml" lr=5;           expect "override without section" 1 "keys are section.key"
run "$mmupt" train "$root/configs/quickstart.yaml"; expect "train on one rank needs a learner" 1 "leaves no learner among 1 rank(s)" "cluster.rollout_ranks=0"
run "$mmupt" train "$root/configs/quickstart.yaml" cluster.rollout_ranks=0; expect "train with a missing model says so" 1 "runs/quickstart/model/config.json: cannot open"
run "$mmupt" train "$root/tests/fixtures/config/bad/unknown_key.yaml"; expect "train rejects a bad config" 1 "unknown key 'rollout.nn'"
# mmupt generate on the text fixture model (no tokenizer: ids in, ids out).
fx=$root/tests/fixtures/models/qwen2
run "$mmupt" generate --model "$fx" --prompt-ids "1 2 3 4 5" --temperature 0 --max-new-tokens 8
expect "generate greedy" 0 "[sample 0: 8 tokens, length]"
if [ "$(wc -w <"$tmp/out")" = 8 ]; then ok "generate prints 8 ids"; else fail "generate prints 8 ids" "$(cat "$tmp/out")"; fi
run "$mmupt" generate --model "$fx" --prompt-ids "1 2 3" -n 3 --max-new-tokens 4 --seed 9
expect "generate -n 3" 0 "--- sample 2 ---" "[sample 2: 4 tokens, length]"
run "$mmupt" generate --model "$fx";                       expect "generate needs a prompt" 2 "exactly one of --prompt / --prompt-ids"
run "$mmupt" generate --model "$fx" --prompt-ids "1" --top-p 2; expect "generate range check" 2 "out of range"
run "$mmupt" generate --model /nonexistent --prompt-ids "1";   expect "generate bad model" 1 "cannot open"
run "$mmupt" generate --model "$fx" --prompt-ids "1 999";      expect "generate bad id" 1 "outside the vocabulary"
run "$mmupt" generate --model "$fx" --prompt "hi";             expect "generate without tokenizer" 1 "--prompt needs a tokenizer"
# A model with its tokenizer: a chat prompt with an image, text streamed out.
tiny=$root/tests/fixtures/models/tiny_train
run "$mmupt" generate --model "$tiny" --prompt "How many squares?" --image "$root/tests/fixtures/prompt/item0_0.png" \
    -n 2 --max-new-tokens 6 --seed 5
expect "generate with prompt and image" 0 "[sample 0: " "[sample 1: " "--- sample 1 ---"
run "$mmupt" generate --model "$tiny" --prompt "x" --image /nonexistent.png; expect "generate bad image" 1 "/nonexistent.png: cannot open"
# --device: on the emulator of a CPU-only build the same greedy ids and sampled text as the CPU
# (--dtype fp32; the default on a device is bf16 GEMMs, which the CPU does not have).
run "$mmupt" generate --model "$fx" --prompt-ids "1" --device tpu; expect "generate bad --device" 2 "--device: 'tpu' is not one of"
run "$mmupt" generate --model "$fx" --prompt-ids "1" --dtype fp16; expect "generate bad --dtype" 2 "--dtype: 'fp16' is not one of auto, fp32, bf16"
run "$mmupt" generate --model "$fx" --prompt-ids "1" --device cpu --dtype bf16
expect "generate --dtype bf16 on the CPU is refused" 1 "--dtype bf16: the model runs on the CPU, which computes in fp32 only"
if "$mmupt" version | grep -q "no CUDA backend"; then
    run "$mmupt" generate --model "$fx" --prompt-ids "1 2 3 4 5" --temperature 0 --max-new-tokens 8 --device cpu
    cp "$tmp/out" "$tmp/gen_cpu"
    run "$mmupt" generate --model "$fx" --prompt-ids "1 2 3 4 5" --temperature 0 --max-new-tokens 8 --device emulator \
        --dtype bf16
    expect "generate --device emulator --dtype bf16" 0 "[sample 0: 8 tokens, length]"
    run "$mmupt" generate --model "$fx" --prompt-ids "1 2 3 4 5" --temperature 0 --max-new-tokens 8 --device emulator \
        --dtype fp32
    expect "generate --device emulator --dtype fp32" 0 "[sample 0: 8 tokens, length]"
    if cmp -s "$tmp/out" "$tmp/gen_cpu"; then ok "generate on the emulator: the CPU's ids"
    else fail "generate on the emulator: the CPU's ids" "$(cat "$tmp/out") vs $(cat "$tmp/gen_cpu")"; fi
    # The device path's switches from the environment (gpu_mem.h's gpu_tuning): each value checked.
    MMUPT_ATTENTION=sideways run "$mmupt" generate --model "$fx" --prompt-ids "1" --device emulator
    expect "a bad MMUPT_ATTENTION" 1 "MMUPT_ATTENTION must be cudnn, cublas or flash, not 'sideways'"
    MMUPT_DECODE_SPLIT=2 run "$mmupt" generate --model "$fx" --prompt-ids "1" --device emulator
    expect "a bad MMUPT_DECODE_SPLIT" 1 "MMUPT_DECODE_SPLIT must be 1 or 0, not '2'"
    MMUPT_GEMM_TUNE=yes run "$mmupt" generate --model "$fx" --prompt-ids "1" --device emulator
    expect "a bad MMUPT_GEMM_TUNE" 1 "MMUPT_GEMM_TUNE must be 1 or 0, not 'yes'"
    MMUPT_DECODE_STAGE=on run "$mmupt" generate --model "$fx" --prompt-ids "1" --device emulator
    expect "a bad MMUPT_DECODE_STAGE" 1 "MMUPT_DECODE_STAGE must be 1 or 0, not 'on'"
    MMUPT_DECODE_PDL=true run "$mmupt" generate --model "$fx" --prompt-ids "1" --device emulator
    expect "a bad MMUPT_DECODE_PDL" 1 "MMUPT_DECODE_PDL must be 1 or 0, not 'true'"
    MMUPT_DECODE_MMA=off run "$mmupt" generate --model "$fx" --prompt-ids "1" --device emulator
    expect "a bad MMUPT_DECODE_MMA (a default-on switch)" 1 "MMUPT_DECODE_MMA must be 1 or 0, not 'off'"
    MMUPT_GEMM_RESIDUAL=yes run "$mmupt" generate --model "$fx" --prompt-ids "1" --device emulator
    expect "a bad MMUPT_GEMM_RESIDUAL (a default-on switch)" 1 "MMUPT_GEMM_RESIDUAL must be 1 or 0, not 'yes'"
    # the residual adds in the GEMMs' epilogue (default) or apart: the same sums, the same ids
    run "$mmupt" generate --model "$fx" --prompt-ids "1 2 3 4 5" --temperature 0 --max-new-tokens 8 --device emulator \
        --dtype bf16
    cp "$tmp/out" "$tmp/gen_res"
    MMUPT_GEMM_RESIDUAL=0 run "$mmupt" generate --model "$fx" --prompt-ids "1 2 3 4 5" --temperature 0 \
        --max-new-tokens 8 --device emulator --dtype bf16
    expect "generate with MMUPT_GEMM_RESIDUAL=0" 0 "[sample 0: 8 tokens, length]"
    if cmp -s "$tmp/out" "$tmp/gen_res"; then ok "MMUPT_GEMM_RESIDUAL=0: the default's ids"
    else fail "MMUPT_GEMM_RESIDUAL=0: the default's ids" "$(cat "$tmp/out") vs $(cat "$tmp/gen_res")"; fi
    MMUPT_GEMM_TUNE=0 MMUPT_GEMM_TUNE_FILE="$tmp/tune.txt" run "$mmupt" generate --model "$fx" --prompt-ids "1" \
        --device emulator
    expect "a tuning file with tuning turned off" 1 "MMUPT_GEMM_TUNE=0 turns it off: unset one"
    MMUPT_ATTENTION=flash MMUPT_DECODE_SPLIT=1 MMUPT_DECODE_MMA=0 MMUPT_DECODE_STAGE=0 run "$mmupt" generate \
        --model "$fx" --prompt-ids "1 2 3 4 5" --temperature 0 --max-new-tokens 8 --device emulator --dtype bf16
    expect "generate with switches set, default-on ones to 0" 0 "[sample 0: 8 tokens, length]"
    run "$mmupt" generate --model "$tiny" --prompt "How many squares?" --image "$root/tests/fixtures/prompt/item0_0.png" \
        -n 2 --max-new-tokens 6 --seed 5 --device cpu
    cp "$tmp/out" "$tmp/gen_cpu"
    run "$mmupt" generate --model "$tiny" --prompt "How many squares?" --image "$root/tests/fixtures/prompt/item0_0.png" \
        -n 2 --max-new-tokens 6 --seed 5 --device emulator --dtype fp32
    if cmp -s "$tmp/out" "$tmp/gen_cpu"; then ok "generate with an image on the emulator: the CPU's samples"
    else fail "generate with an image on the emulator: the CPU's samples" "$(cat "$tmp/out") vs $(cat "$tmp/gen_cpu")"; fi
fi

# mmupt synth takes its settings from the config section `synth`; options override it.
syn=(synth --model "$root/tests/fixtures/models/tiny_train" --data "$root/tests/fixtures/datasets/small.h5" --threads 1)
run "$mmupt" "${syn[@]}" --out "$tmp/s.h5" synth.n=0;         expect "synth: a bad synth.n" 1 "override synth.n: 0 is out of range"
run "$mmupt" "${syn[@]}" --out "$tmp/s.h5" synth.mode=sideways; expect "synth: a bad synth.mode" 1 "'sideways' is not one of: direct, in-context"
run "$mmupt" "${syn[@]}" --out "$tmp/s.h5" --config "$tmp/none.yaml"; expect "synth: a missing config" 1 "none.yaml: cannot open"
printf 'synth:\n  mode: in-context\n  n: 3\n  require_question: false\n  min_chars: 0\n  prompt_in_context: "Q {question} A {answer}: another?"\n' >"$tmp/synth.yaml"
run "$mmupt" "${syn[@]}" --out "$tmp/s.h5" --config "$tmp/synth.yaml" synth.n=2
expect "synth: settings from a config and an override" 0 "wrote $tmp/s.h5"
if python3 -c "import json,sys; d=json.load(open(sys.argv[1])); s=d['settings']
assert (s['mode'], s['n'], s['require_question'], d['prompt'], d['prompt_is_default']) == ('in-context', 2, False, 'Q {question} A {answer}: another?', False), d" "$tmp/s.json"
then ok "synth: the summary shows the config's mode and prompt and the override's n"
else fail "synth: the summary shows the config's mode and prompt and the override's n"; fi
run "$mmupt" "${syn[@]}" --out "$tmp/s.h5" --config "$tmp/synth.yaml" --mode direct -n 1
expect "synth: options override the config" 0 "wrote $tmp/s.h5"
if python3 -c "import json,sys; d=json.load(open(sys.argv[1])); s=d['settings']
assert (s['mode'], s['n'], d['prompt_is_default']) == ('direct', 1, True), d" "$tmp/s.json"
then ok "synth: --mode and -n win over the config; direct mode uses its default prompt"
else fail "synth: --mode and -n win over the config; direct mode uses its default prompt"; fi
finish
