#!/usr/bin/env bash
# End-to-end test of the SLURM profile (slurm/config.yaml) on a real single-node SLURM cluster.
#
#   bash tests/slurm/run_slurm_test.sh            # SKIP (exit 0, "SKIP: ..." printed) without root/apt
#   bash tests/slurm/run_slurm_test.sh --require  # same, but a SKIP exits 3 (for CI that must run it)
#
# 1. starts a local cluster (tests/slurm/cluster.sh), copies the working tree into a temp dir and
#    runs `snakemake --profile slurm --configfile config/test.yaml` with test-only overrides on the
#    command line (so the shipped profile stays realistic); checks every output of the DAG exists
#    and that the non-local jobs went through sbatch;
# 2. builds the same run files with the same config and `snakemake --cores 1` in a second copy and
#    requires identical SHA-256 for every results/main/runs/**/*.safetensors;
# 3. reruns one training job under SLURM, cancels it with scancel after step 7: the profile's retries
#    resubmit it, it resumes from its checkpoint and ends with the bytes of step 2's run;
# 4. corrupts train's input in the SLURM copy: snakemake must exit non-zero, in bounded time, naming
#    the failing rule `train`;
# 5. stops the daemons (also on failure or interrupt).
#
# Environment: FLANNEL_SLURM_KEEP=1 keeps the temp dir; FLANNEL_SLURM_TIMEOUT (s, default 900)
# bounds each snakemake run; FLANNEL_SLURM_FAIL_LIMIT (s, default 600) bounds the failing run (the SLURM profile sets retries: 2, so it is submitted three times: about 230 s here).
set -uo pipefail

REQUIRE=0
[[ "${1:-}" == "--require" ]] && REQUIRE=1

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CLUSTER="$REPO/tests/slurm/cluster.sh"
PARTITION=flanneltest
TIMEOUT="${FLANNEL_SLURM_TIMEOUT:-900}"
FAIL_LIMIT="${FLANNEL_SLURM_FAIL_LIMIT:-600}"
CONFIG=config/test.yaml

T0=$(date +%s)
say() { printf '[slurm-test %4ss] %s\n' "$(($(date +%s) - T0))" "$*"; }
fail() {
    say "FAIL: $*"
    exit 1
}

WORK="$(mktemp -d /tmp/flannel-slurm-test.XXXXXX)"
CLUSTER_DIR="$WORK/cluster"
STARTED=0
SKIPPED=0
cleanup() {
    local rc=$?
    if ((STARTED)); then
        say "stopping the cluster"
        FLANNEL_SLURM_PARTITION=$PARTITION "$CLUSTER" stop "$CLUSTER_DIR" || true
    fi
    if ((rc == 0 || SKIPPED)) && [[ "${FLANNEL_SLURM_KEEP:-0}" != 1 ]]; then
        rm -rf "$WORK"
    else
        say "kept $WORK for inspection"
    fi
    exit "$rc"
}
trap cleanup EXIT

# --- cluster ----------------------------------------------------------------------------------
say "starting a single-node SLURM cluster in $CLUSTER_DIR"
FLANNEL_SLURM_PARTITION=$PARTITION "$CLUSTER" start "$CLUSTER_DIR" >"$WORK/cluster-start.log" 2>&1
rc=$?
if ((rc == 3)); then
    msg="$(grep -m1 '^SKIP:' "$WORK/cluster-start.log" || echo 'SKIP: cluster cannot run here')"
    echo "$msg"
    echo "SKIP: SLURM end-to-end test not run"
    SKIPPED=1
    ((REQUIRE)) && exit 3
    exit 0
fi
STARTED=1
if ((rc != 0)); then
    tail -n 40 "$WORK/cluster-start.log"
    fail "cluster.sh start exited $rc"
fi
grep '^\[cluster\] cluster up' "$WORK/cluster-start.log" || true

# --- copies of the working tree -----------------------------------------------------------------
copy_tree() {  # copy_tree DEST: tracked + untracked-not-ignored files, never results/logs/.snakemake
    local dest="$1"
    mkdir -p "$dest"
    if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git -C "$REPO" ls-files -z -co --exclude-standard |
            grep -z -v -E '^(results|logs|benchmarks|\.snakemake)/' |
            tar -C "$REPO" --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -C "$dest" -xf -
    else
        tar -C "$REPO" --exclude=./results --exclude=./logs --exclude=./benchmarks \
            --exclude=./.snakemake --exclude=./.git -cf - . | tar -C "$dest" -xf -
    fi
    [[ -f "$dest/Snakefile" || -f "$dest/workflow/Snakefile" ]] || fail "copy to $dest has no Snakefile"
    [[ -f "$dest/slurm/config.yaml" ]] || fail "copy to $dest has no slurm/config.yaml"
}

SLURM_COPY="$WORK/slurm-run"
LOCAL_COPY="$WORK/local-run"
copy_tree "$SLURM_COPY"
copy_tree "$LOCAL_COPY"
say "copied the working tree to $SLURM_COPY and $LOCAL_COPY"

# run_in DIR LOG LIMIT CMD...: run CMD in DIR under `timeout --foreground -s INT -k 60 LIMIT`, output
# to LOG, return its exit code. Each copy imports its own package (an editable install would point
# back at $REPO). The command gets its own process group (setsid): if snakemake is killed, the
# local job scripts it started would otherwise live on; they are ended through that group id.
RUN_PID=""
run_in() {
    local dir="$1" log="$2" limit="$3" rc
    shift 3
    (cd "$dir" && PYTHONPATH="$dir/src${PYTHONPATH:+:$PYTHONPATH}" \
        exec setsid timeout --foreground -s INT -k 60 "$limit" "$@") >"$log" 2>&1 &
    RUN_PID=$!
    wait "$RUN_PID"
    rc=$?
    end_group
    return "$rc"
}
end_group() {  # end whatever is left of the last run_in's process group
    [[ -n "$RUN_PID" ]] || return 0
    if kill -0 -- "-$RUN_PID" 2>/dev/null; then
        say "ending leftover processes of process group $RUN_PID"
        kill -TERM -- "-$RUN_PID" 2>/dev/null
        sleep 3
        kill -KILL -- "-$RUN_PID" 2>/dev/null
    fi
    RUN_PID=""
}
on_interrupt() {  # Ctrl-C: SIGINT to timeout, which relays it to snakemake (cancels its SLURM jobs)
    if [[ -n "$RUN_PID" ]] && kill -0 "$RUN_PID" 2>/dev/null; then
        say "interrupted: sending SIGINT to snakemake and waiting for it (at most 70 s)"
        kill -INT "$RUN_PID" 2>/dev/null
        local i
        for ((i = 0; i < 70; i++)); do
            kill -0 "$RUN_PID" 2>/dev/null || break
            sleep 1
        done
        end_group
    fi
    exit 130
}
trap on_interrupt INT TERM

# Test-only settings, given on the command line so slurm/config.yaml stays a real-cluster profile:
# squeue for status (no slurmdbd here, MinJobAge=300), first status check after 2 s, our
# partition (--default-resources replaces the profile's whole block, so all keys are repeated),
# no account, short latency wait, and keep the SLURM logs of successful jobs as evidence.
SLURM_ARGS=(
    --profile slurm
    --configfile "$CONFIG"
    --slurm-status-command squeue
    --slurm-init-seconds-before-status-checks 2
    --slurm-no-account
    --slurm-keep-successful-logs
    --default-resources "slurm_partition=$PARTITION" runtime=30 mem_mb=2000
    --set-resources "train:slurm_partition=$PARTITION"
    --latency-wait 5
    --jobs 4
)

# --- 1. the whole DAG through SLURM -------------------------------------------------------------
say "part 1: snakemake --profile slurm --configfile $CONFIG (limit ${TIMEOUT}s)"
t=$(date +%s)
run_in "$SLURM_COPY" "$WORK/slurm-run.log" "$TIMEOUT" snakemake "${SLURM_ARGS[@]}"
rc=$?
say "SLURM run exited $rc after $(($(date +%s) - t))s (log: $WORK/slurm-run.log)"
if ((rc != 0)); then
    tail -n 60 "$WORK/slurm-run.log"
    for f in "$SLURM_COPY"/.snakemake/slurm_logs/*/*/*.log "$SLURM_COPY"/.snakemake/slurm_logs/*/*.log; do
        [[ -f "$f" ]] && { echo "--- $f"; tail -n 20 "$f"; }
    done
    fail "snakemake under SLURM exited $rc"
fi

grep -E 'has been submitted with SLURM jobid' "$WORK/slurm-run.log" | sed 's/^/    /'
n_sub=$(grep -c 'has been submitted with SLURM jobid' "$WORK/slurm-run.log")
n_train_sub=$(grep 'has been submitted with SLURM jobid' "$WORK/slurm-run.log" | grep -c 'rule_train/')
n_train=$(grep -E '^train +[0-9]+' "$WORK/slurm-run.log" | head -n 1 | awk '{print $2}')
say "$n_sub job(s) submitted through sbatch, $n_train_sub of them train (DAG has ${n_train:-?} train jobs)"
((n_sub > 0)) || fail "no job was submitted through sbatch"
if [[ -z "$n_train" ]] || ((n_train_sub != n_train)); then fail "not every train job went through sbatch"; fi
sq="$(squeue -h -t all -o '    %i %T %P %j' 2>/dev/null || true)"
if [[ -n "$sq" ]]; then
    say "SLURM's view of the jobs (job id, state, partition, name):"
    echo "$sq"
else
    say "squeue no longer lists the jobs (finished more than MinJobAge=300 s ago)"
fi

# Every output of the DAG exists and nothing is left to do.
(cd "$SLURM_COPY" && PYTHONPATH="$SLURM_COPY/src" timeout 300 snakemake --configfile "$CONFIG" --summary \
    >"$WORK/summary.tsv" 2>"$WORK/summary.err") || fail "snakemake --summary failed: $(tail -n 5 "$WORK/summary.err")"
n_out=0
while IFS=$'\t' read -r file _date rule _log status _plan; do
    [[ "$file" == output_file ]] && continue
    [[ -z "$file" ]] && continue
    n_out=$((n_out + 1))
    [[ -e "$SLURM_COPY/$file" ]] || fail "expected output missing: $file (rule $rule)"
    [[ "$status" == ok ]] || fail "output $file has status '$status' (rule $rule)"
done <"$WORK/summary.tsv"
((n_out > 0)) || fail "snakemake --summary listed no outputs"
(cd "$SLURM_COPY" && PYTHONPATH="$SLURM_COPY/src" timeout 300 snakemake -n --configfile "$CONFIG" \
    >"$WORK/dryrun.log" 2>&1)
grep -q 'Nothing to be done' "$WORK/dryrun.log" || fail "after the SLURM run a dry run still has work: $(tail -n 20 "$WORK/dryrun.log")"
say "all $n_out expected outputs exist; a dry run has nothing to do"

# --- 2. same bytes as a local run ---------------------------------------------------------------
# Only the runs are compared, so the local run builds just them (and what they need).
hashes() { (cd "$1" && find results/main/runs -name '*.safetensors' -type f -print0 | sort -z | xargs -0 -r sha256sum); }
hashes "$SLURM_COPY" >"$WORK/slurm.sha256"
mapfile -t run_targets < <(awk '{print $2}' "$WORK/slurm.sha256")
((${#run_targets[@]} > 0)) || fail "no results/main/runs/**/*.safetensors after the SLURM run"
say "part 2: snakemake --cores 1 --configfile $CONFIG (${#run_targets[@]} run files) in a second copy"
t=$(date +%s)
run_in "$LOCAL_COPY" "$WORK/local-run.log" "$TIMEOUT" snakemake --cores 1 --configfile "$CONFIG" -- "${run_targets[@]}"
rc=$?
say "local run exited $rc after $(($(date +%s) - t))s"
((rc == 0)) || { tail -n 40 "$WORK/local-run.log"; fail "local snakemake exited $rc"; }

hashes "$LOCAL_COPY" >"$WORK/local.sha256"
n_st=$(wc -l <"$WORK/slurm.sha256")
if ! diff -u "$WORK/local.sha256" "$WORK/slurm.sha256"; then
    fail "safetensors differ between the SLURM run and the local run (see diff above)"
fi
sed 's/^/    /' "$WORK/slurm.sha256"
say "all $n_st results/main/runs safetensors are byte-identical between SLURM and local"

# --- 3. scancel: the resubmitted training job resumes from its checkpoint -------------------------
# The job stops itself after step 7 (FLANNEL_PAUSE_AT, exported to the job by sbatch) so scancel lands at a
# known point; SLURM's SIGTERM makes it save a checkpoint there; the profile's retries resubmit it, and the
# new job trains steps 8-20 only, ending with the bytes of part 2's uninterrupted run.
resumed="results/main/runs/tied/seed42.safetensors"
resumed_log="$SLURM_COPY/logs/main/train/tied/seed42.log"
expected_hash=$(awk -v f="$resumed" '$2 == f {print $1}' "$WORK/local.sha256")
[[ -n "$expected_hash" ]] || fail "part 2 built no $resumed"
say "part 3: rerunning $resumed under SLURM, cancelled with scancel after step 7 (limit ${TIMEOUT}s)"
(cd "$SLURM_COPY" && PYTHONPATH="$SLURM_COPY/src" FLANNEL_PAUSE_AT=step:7 exec setsid timeout --foreground -s INT \
    -k 60 "$TIMEOUT" snakemake "${SLURM_ARGS[@]}" --config "training={checkpoint_every: 5, log_every: 1}" \
    --forcerun train -- "$resumed") >"$WORK/slurm-scancel.log" 2>&1 &
RUN_PID=$!
paused=""
for ((i = 0; i < 600; i++)); do
    for pid in $(pgrep -f '\.train\.py' || true); do
        [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" == T ]] && paused=$pid
    done
    [[ -n "$paused" ]] && break
    kill -0 "$RUN_PID" 2>/dev/null || break
    sleep 0.5
done
[[ -n "$paused" ]] || { tail -n 30 "$WORK/slurm-scancel.log"; fail "the training job never reached step 7"; }
jobid=$(grep -oE 'submitted with SLURM jobid [0-9]+' "$WORK/slurm-scancel.log" | tail -n 1 | awk '{print $NF}')
[[ -n "$jobid" ]] || fail "snakemake printed no SLURM job id for the train job"
say "training job (SLURM job $jobid, pid $paused) paused after step 7: scancel $jobid"
scancel "$jobid"
wait "$RUN_PID"
rc=$?
end_group
((rc == 0)) || { tail -n 40 "$WORK/slurm-scancel.log"; fail "snakemake exited $rc after the scancel"; }
n_resub=$(grep -c 'has been submitted with SLURM jobid' "$WORK/slurm-scancel.log")
((n_resub == 2)) || fail "the cancelled train job was submitted $n_resub times, not 2"
# How far the cancelled job gets is SLURM's timing: SIGCONT and SIGTERM land together (the job may train on a
# step or three and stop with a checkpoint there), or the job step is killed before the job's own handler has
# run (then its last periodic checkpoint, step 5, holds). Either way the resubmitted job must go on from a
# checkpoint, not from step 1, and train exactly the steps after it.
resumed_at=$(grep -oE 'resumed from the checkpoint at step [0-9]+; training steps [0-9]+-20' "$resumed_log" | awk '{print $7}')
resumed_at=${resumed_at%;}
[[ -n "$resumed_at" ]] && ((resumed_at >= 5)) ||
    fail "the resubmitted job did not resume from a checkpoint: $(grep -m3 -E 'resumed|discarded|step 1/' "$resumed_log")"
trained=$(grep -oE 'step [0-9]+/20 loss' "$resumed_log" | awk '{split($2, s, "/"); print s[1]}' | tr '\n' ' ')
[[ "$trained" == "$(seq -s ' ' $((resumed_at + 1)) 20) " ]] ||
    fail "the resumed job trained steps '$trained', not $((resumed_at + 1))-20"
got_hash=$(cd "$SLURM_COPY" && sha256sum "$resumed" | awk '{print $1}')
[[ "$got_hash" == "$expected_hash" ]] || fail "$resumed after the resume differs from the uninterrupted run"
say "scancel after step 7: resubmitted once, resumed from the checkpoint at step $resumed_at, trained only the steps after it, byte-identical to part 2"

# --- 4. a failing SLURM job stops the workflow --------------------------------------------------
# Only `train` reads the live/dead masks among the jobs needed for one run file: corrupt them and
# ask for that run; train is retried under SLURM (its input is newer than its output) and must fail.
target=$(awk -F'\t' '$3 == "train" && $1 ~ /\.safetensors$/ {print $1; exit}' "$WORK/summary.tsv")
[[ -n "$target" ]] || fail "no train output in the summary"
masks="$SLURM_COPY/results/data/live_dead_tokens.safetensors"
[[ -f "$masks" ]] || fail "missing $masks"
printf 'this is not a safetensors file\n' >"$masks"
say "part 4: corrupted results/data/live_dead_tokens.safetensors; rebuilding $target under SLURM (limit ${FAIL_LIMIT}s)"
t=$(date +%s)
run_in "$SLURM_COPY" "$WORK/slurm-fail.log" "$FAIL_LIMIT" snakemake "${SLURM_ARGS[@]}" --forcerun train -- "$target"
rc=$?
dt=$(($(date +%s) - t))
say "failing run exited $rc after ${dt}s"
grep -E 'has been submitted with SLURM jobid|Error in rule|SLURM-job .* failed' "$WORK/slurm-fail.log" | sed 's/^/    /'
case $rc in
0) fail "snakemake succeeded although train's input was corrupt" ;;
124 | 130 | 137) fail "snakemake did not stop by itself within ${FAIL_LIMIT}s (exit $rc)" ;;
esac
grep -q 'Error in rule train' "$WORK/slurm-fail.log" || fail "the failing rule 'train' is not named in the output"
grep -q 'has been submitted with SLURM jobid' "$WORK/slurm-fail.log" || fail "the failing train job was not submitted through sbatch"
n_fail_sub=$(grep -c 'has been submitted with SLURM jobid' "$WORK/slurm-fail.log")
((n_fail_sub == 3)) || fail "the failing train job was submitted $n_fail_sub times, not 3 (the profile's retries: 2)"
say "a failing train job under SLURM makes snakemake exit $rc in ${dt}s after 3 submissions, naming rule train"

say "PASS: SLURM end-to-end test ($(($(date +%s) - T0))s in total)"
