#!/usr/bin/env bash
# AWS CLI end-to-end compatibility flow against a Kinesis Data Streams endpoint.
#
# Usage: tests/compat/awscli_flow.sh ENDPOINT_URL          e.g. http://127.0.0.1:4567
#
# Env:
#   AWS_CLI   path to the `aws` executable (default: `aws` on PATH), e.g. VENV/bin/aws from
#             tests/compat/setup_venv.sh
#   PYTHON    python3 used for JSON checks, stdlib only (default: the python next to AWS_CLI if
#             there is one, else python3)
#
# Credentials/region are dummies set here; ~/.aws is ignored (private config file in a temp dir).
# Each check prints "ok - ..." or "FAIL - ..."; the last line is always
#   awscli flow: P passed, F failed
# and the exit status is 0 only when F is 0.
#
# Works with AWS CLI v1 (what setup_venv.sh installs) and v2. v1 has no
# --cli-binary-format option (it rejects it) and already treats blob arguments as raw bytes,
# so the flag is passed only to v2; the private config file also sets
# cli_binary_format = raw-in-base64-out, which v2 honours and v1 accepts.
#
# Real-Kinesis behaviours this flow relies on (millrace must match them):
#   * put-record's ShardId is the shard whose HashKeyRange holds MD5(partition key) read as a
#     128-bit big-endian integer.
#   * Retention changes put the stream into UPDATING for a moment; we wait for ACTIVE before
#     the next mutating call (kinesalite applies them instantly and stays ACTIVE, which also
#     passes).
#   * Records put are readable at once by GetRecords from TRIM_HORIZON. GetRecords may return
#     empty pages while MillisBehindLatest > 0; we keep reading until an empty page with
#     MillisBehindLatest == 0 (kinesalite always reports 0 for open shards).
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 ENDPOINT_URL" >&2
  exit 2
fi
ENDPOINT="$1"

AWS_BIN="${AWS_CLI:-aws}"
if ! command -v "$AWS_BIN" >/dev/null 2>&1; then
  echo "awscli_flow.sh: aws CLI not found (set AWS_CLI=/path/to/venv/bin/aws)" >&2
  echo "awscli flow: 0 passed, 1 failed"
  exit 1
fi
AWS_BIN="$(command -v "$AWS_BIN")"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$(dirname "$AWS_BIN")/python" ]]; then
    PYTHON="$(dirname "$AWS_BIN")/python"
  else
    PYTHON=python3
  fi
fi

# --- hermetic client environment ---------------------------------------------------------
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_ROLE_ARN \
      AWS_WEB_IDENTITY_TOKEN_FILE AWS_CA_BUNDLE AWS_ENDPOINT_URL AWS_ENDPOINT_URL_KINESIS
export AWS_ACCESS_KEY_ID=millrace
export AWS_SECRET_ACCESS_KEY=millrace
export AWS_DEFAULT_REGION=us-east-1
export AWS_REGION=us-east-1
export AWS_PAGER=""
export AWS_EC2_METADATA_DISABLED=true
export AWS_RETRY_MODE=standard
export AWS_MAX_ATTEMPTS=5

WORK="$(mktemp -d "${TMPDIR:-/tmp}/awscli-flow.XXXXXX")"
export AWS_CONFIG_FILE="$WORK/aws-config"
export AWS_SHARED_CREDENTIALS_FILE="$WORK/aws-credentials"
printf '[default]\nregion = us-east-1\ncli_binary_format = raw-in-base64-out\n' >"$AWS_CONFIG_FILE"
: >"$AWS_SHARED_CREDENTIALS_FILE"

BINFMT=()
if "$AWS_BIN" --version 2>&1 | grep -q '^aws-cli/2'; then
  BINFMT=(--cli-binary-format raw-in-base64-out)
fi

STREAM="millrace-compat-cli-$(date +%s)-$$-${RANDOM}"
SHARDS=2
STREAM_CREATED=0
STREAM_DELETED=0
PASSED=0
FAILED=0

# --- reporting -------------------------------------------------------------------------------
pass() { PASSED=$((PASSED + 1)); echo "ok - $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL - $1"; }
abort() { fail "$1"; echo "aborting: later steps depend on this one"; exit 1; }

finish() {
  local rc=$?
  trap - EXIT
  if [[ "$STREAM_CREATED" == 1 && "$STREAM_DELETED" == 0 ]]; then
    awsk delete-stream --stream-name "$STREAM" >/dev/null 2>&1 || true
  fi
  if (( FAILED > 0 || rc != 0 )); then
    (( FAILED > 0 )) || FAILED=1
    echo "artifacts kept in $WORK"
    echo "awscli flow: $PASSED passed, $FAILED failed"
    exit 1
  fi
  rm -rf "$WORK"
  echo "awscli flow: $PASSED passed, $FAILED failed"
  exit 0
}
trap finish EXIT

# --- helpers ---------------------------------------------------------------------------------
awsk() { "$AWS_BIN" --endpoint-url "$ENDPOINT" --output json kinesis "$@"; }

# call TAG ARGS...: run `aws kinesis ARGS`, stdout -> $WORK/TAG.json, stderr -> $WORK/TAG.err
call() {
  local tag="$1"
  shift
  awsk "$@" >"$WORK/$tag.json" 2>"$WORK/$tag.err"
}

# indent TEXT: print TEXT with every line indented (details under a FAIL line)
indent() {
  local line
  while IFS= read -r line; do printf '    %s\n' "$line"; done <<<"$1"
}

# errtext TAG: one-line summary of a failed call's stderr
errtext() { tr '\n' ' ' <"$WORK/$1.err" | cut -c1-400; }

# jget FILE EXPR: print a Python expression evaluated with d = parsed JSON of FILE
jget() {
  "$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# check DESC FILE EXPR: pass when EXPR (Python, d = parsed JSON of FILE) is true
check() {
  local desc="$1" file="$2" expr="$3" out
  if out="$("$PYTHON" - "$file" "$expr" 2>&1 <<'PY'
import json, sys
path, expr = sys.argv[1], sys.argv[2]
try:
    d = json.load(open(path))
except Exception as e:  # empty / non-JSON output
    print(f"cannot parse {path}: {e}")
    sys.exit(1)
if not eval(expr):
    print(f"expected: {expr}\n  got: {json.dumps(d, sort_keys=True)[:800]}")
    sys.exit(1)
PY
)"; then
    pass "$desc"
  else
    fail "$desc"
    indent "$out"
  fi
}

# wait_active TAG: the stream is ACTIVE again (after create or an update)
wait_active() {
  call "$1" wait stream-exists --stream-name "$STREAM"
}

# --- 1. create + wait -------------------------------------------------------------------------
echo "# endpoint $ENDPOINT, stream $STREAM, aws: $("$AWS_BIN" --version 2>&1 | cut -d' ' -f1)"
if call create create-stream --stream-name "$STREAM" --shard-count "$SHARDS"; then
  STREAM_CREATED=1
  pass "create-stream $STREAM ($SHARDS shards)"
else
  abort "create-stream: $(errtext create)"
fi

if wait_active wait-create; then
  pass "wait stream-exists"
else
  abort "wait stream-exists: $(errtext wait-create)"
fi

# --- 2. describe-stream-summary / list-shards -------------------------------------------------
if call summary describe-stream-summary --stream-name "$STREAM"; then
  check "describe-stream-summary: name, ACTIVE, $SHARDS open shards, 24h retention" \
    "$WORK/summary.json" \
    "(lambda s: s['StreamName'] == '$STREAM' and s['StreamStatus'] == 'ACTIVE'
       and s['OpenShardCount'] == $SHARDS and s['RetentionPeriodHours'] == 24
       and s['StreamARN'].endswith(':stream/$STREAM'))(d['StreamDescriptionSummary'])"
else
  fail "describe-stream-summary: $(errtext summary)"
fi

if call shards list-shards --stream-name "$STREAM"; then
  check "list-shards: $SHARDS shards whose HashKeyRanges tile [0, 2^128-1]" "$WORK/shards.json" \
    "(lambda r: len(r) == $SHARDS and r[0][0] == 0 and r[-1][1] == 2**128 - 1
       and all(r[i][1] + 1 == r[i + 1][0] for i in range(len(r) - 1)))(
       sorted((int(s['HashKeyRange']['StartingHashKey']), int(s['HashKeyRange']['EndingHashKey']))
              for s in d['Shards']))"
else
  abort "list-shards: $(errtext shards)"
fi
mapfile -t SHARD_IDS < <(jget "$WORK/shards.json" "'\n'.join(s['ShardId'] for s in d['Shards'])")

# --- 3. put-record ----------------------------------------------------------------------------
PKS=(alpha bravo charlie delta echo foxtrot golf hotel)
PAYLOADS=(
  '{"n":0,"msg":"hello"}'
  '{"n":1,"msg":"caf\u00e9 raw: café ✓"}'
  '{"n":2,"nested":{"a":[1,2,3],"b":null}}'
  '{"n":3,"msg":"tab\there","quote":"\""}'
  '{"n":4,"msg":""}'
  '{"n":5,"msg":"same key as n=0"}'
  '{"n":6,"msg":"same key as n=0, again"}'
  '{"n":7,"big":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}'
)
PKS[5]=alpha
PKS[6]=alpha
PUTS="$WORK/puts.jsonl"
: >"$PUTS"
for i in "${!PAYLOADS[@]}"; do
  if call "put-$i" put-record "${BINFMT[@]}" --stream-name "$STREAM" \
       --partition-key "${PKS[$i]}" --data "${PAYLOADS[$i]}"; then
    if "$PYTHON" - "$WORK/put-$i.json" "${PKS[$i]}" "${PAYLOADS[$i]}" "$PUTS" <<'PY'
import json, sys
resp = json.load(open(sys.argv[1]))
shard, seq = resp.get("ShardId"), resp.get("SequenceNumber")
if not (isinstance(shard, str) and isinstance(seq, str) and seq.isdigit()):
    print(f"    bad response: {resp}")
    sys.exit(1)
with open(sys.argv[4], "a") as f:
    f.write(json.dumps({"pk": sys.argv[2], "data": sys.argv[3], "shard": shard, "seq": seq}) + "\n")
PY
    then
      pass "put-record #$i (key ${PKS[$i]}) -> $(jget "$WORK/put-$i.json" "d['ShardId']")"
    else
      fail "put-record #$i returned no ShardId/SequenceNumber"
    fi
  else
    fail "put-record #$i: $(errtext "put-$i")"
  fi
done

check "put-record shards follow MD5(partition key) in list-shards HashKeyRange" "$WORK/shards.json" \
  "(lambda puts, hashlib: all(any(int(s['HashKeyRange']['StartingHashKey'])
      <= int.from_bytes(hashlib.md5(p['pk'].encode()).digest(), 'big')
      <= int(s['HashKeyRange']['EndingHashKey']) for s in d['Shards'] if s['ShardId'] == p['shard'])
      for p in puts) and len(puts) == ${#PAYLOADS[@]})(
      [json.loads(l) for l in open('$PUTS')], __import__('hashlib'))"

# --- 4. read back every shard from TRIM_HORIZON -------------------------------------------------
READS="$WORK/reads.jsonl"
: >"$READS"
for shard in "${SHARD_IDS[@]}"; do
  if ! call "iter-$shard" get-shard-iterator --stream-name "$STREAM" --shard-id "$shard" \
       --shard-iterator-type TRIM_HORIZON; then
    fail "get-shard-iterator $shard TRIM_HORIZON: $(errtext "iter-$shard")"
    continue
  fi
  iterator="$(jget "$WORK/iter-$shard.json" "d.get('ShardIterator') or ''")"
  if [[ -z "$iterator" ]]; then
    fail "get-shard-iterator $shard returned no ShardIterator"
    continue
  fi
  pass "get-shard-iterator $shard TRIM_HORIZON"

  expected="$("$PYTHON" -c 'import json,sys; print(sum(1 for l in open(sys.argv[1]) if json.loads(l)["shard"] == sys.argv[2]))' "$PUTS" "$shard")"
  got=0
  status=fail
  for ((page = 0; page < 40; page++)); do
    tag="records-$shard-$page"
    if ! call "$tag" get-records --shard-iterator "$iterator" --limit 1000; then
      echo "    get-records $shard page $page: $(errtext "$tag")"
      break
    fi
    # prints: <records in page> <MillisBehindLatest> <NextShardIterator or "-">
    if ! read -r n behind next < <("$PYTHON" - "$WORK/$tag.json" "$shard" "$READS" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
recs = d.get("Records", [])
with open(sys.argv[3], "a") as f:
    for r in recs:
        f.write(json.dumps({"shard": sys.argv[2], "seq": r["SequenceNumber"],
                            "pk": r["PartitionKey"], "data_b64": r["Data"],
                            "has_ts": "ApproximateArrivalTimestamp" in r}) + "\n")
print(len(recs), d.get("MillisBehindLatest", -1), d.get("NextShardIterator") or "-")
PY
); then
      echo "    get-records $shard page $page: unreadable response in $WORK/$tag.json"
      break
    fi
    got=$((got + n))
    if [[ "$next" == "-" ]]; then status=ok; break; fi   # shard closed and fully read
    iterator="$next"
    if [[ "$n" == 0 && "$behind" == 0 ]]; then
      if (( got >= expected )); then status=ok; break; fi
      sleep 0.5    # caught up but short: give the server a moment, then fail after 40 pages
    elif [[ "$n" == 0 ]]; then
      sleep 0.2
    fi
  done
  if [[ "$status" == ok ]]; then
    pass "get-records $shard: read to the tip ($got records, $expected put)"
  else
    fail "get-records $shard: did not reach the tip ($got records read, $expected put)"
  fi
done

if out="$("$PYTHON" - "$PUTS" "$READS" <<'PY' 2>&1
import base64, json, sys
puts = [json.loads(l) for l in open(sys.argv[1])]
reads = [json.loads(l) for l in open(sys.argv[2])]
errors = []
by_seq = {}
for r in reads:
    by_seq.setdefault(r["seq"], []).append(r)
for i, p in enumerate(puts):
    got = by_seq.get(p["seq"], [])
    if len(got) != 1:
        errors.append(f"record #{i} seq {p['seq']}: read {len(got)} times")
        continue
    r = got[0]
    if r["shard"] != p["shard"]:
        errors.append(f"record #{i}: put said {p['shard']}, found in {r['shard']}")
    if base64.b64decode(r["data_b64"]) != p["data"].encode("utf-8"):
        errors.append(f"record #{i}: data differs: {base64.b64decode(r['data_b64'])!r} != {p['data']!r}")
    if r["pk"] != p["pk"]:
        errors.append(f"record #{i}: partition key {r['pk']!r} != {p['pk']!r}")
    if not r["has_ts"]:
        errors.append(f"record #{i}: no ApproximateArrivalTimestamp")
put_seqs = {p["seq"] for p in puts}
extra = [r["seq"] for r in reads if r["seq"] not in put_seqs]
if extra:
    errors.append(f"{len(extra)} records read that were never put: {extra[:3]}")
for shard in sorted({p["shard"] for p in puts}):
    want = [p["seq"] for p in puts if p["shard"] == shard]
    have = [r["seq"] for r in reads if r["shard"] == shard]
    if have != want:
        errors.append(f"{shard}: read order {have} != put order {want}")
    ints = [int(s) for s in have]
    if any(a >= b for a, b in zip(ints, ints[1:])):
        errors.append(f"{shard}: sequence numbers not strictly increasing")
for e in errors:
    print(e)
sys.exit(1 if errors else 0)
PY
)"; then
  pass "every record read back once: same shard, sequence number, partition key and bytes, in put order"
else
  fail "read-back does not match put-record results"
  indent "$out"
fi

# --- 5. retention -----------------------------------------------------------------------------
if call ret-inc increase-stream-retention-period --stream-name "$STREAM" --retention-period-hours 48 \
   && wait_active wait-ret-inc && call ret-inc-summary describe-stream-summary --stream-name "$STREAM"; then
  check "increase-stream-retention-period to 48h" "$WORK/ret-inc-summary.json" \
    "d['StreamDescriptionSummary']['RetentionPeriodHours'] == 48"
else
  fail "increase-stream-retention-period: $(errtext ret-inc) $(errtext wait-ret-inc 2>/dev/null || true)"
fi
if call ret-dec decrease-stream-retention-period --stream-name "$STREAM" --retention-period-hours 24 \
   && wait_active wait-ret-dec && call ret-dec-summary describe-stream-summary --stream-name "$STREAM"; then
  check "decrease-stream-retention-period to 24h" "$WORK/ret-dec-summary.json" \
    "d['StreamDescriptionSummary']['RetentionPeriodHours'] == 24"
else
  fail "decrease-stream-retention-period: $(errtext ret-dec) $(errtext wait-ret-dec 2>/dev/null || true)"
fi

# --- 6. tags ----------------------------------------------------------------------------------
if call tag-add add-tags-to-stream --stream-name "$STREAM" --tags "env=compat,owner=millrace,team=streams"; then
  pass "add-tags-to-stream (3 tags)"
else
  fail "add-tags-to-stream: $(errtext tag-add)"
fi
if call tag-list1 list-tags-for-stream --stream-name "$STREAM"; then
  check "list-tags-for-stream shows the 3 tags" "$WORK/tag-list1.json" \
    "{t['Key']: t.get('Value') for t in d['Tags']} == {'env': 'compat', 'owner': 'millrace', 'team': 'streams'}"
else
  fail "list-tags-for-stream: $(errtext tag-list1)"
fi
if call tag-rm remove-tags-from-stream --stream-name "$STREAM" --tag-keys owner team; then
  pass "remove-tags-from-stream (2 keys)"
else
  fail "remove-tags-from-stream: $(errtext tag-rm)"
fi
if call tag-list2 list-tags-for-stream --stream-name "$STREAM"; then
  check "list-tags-for-stream after removal shows only env" "$WORK/tag-list2.json" \
    "{t['Key']: t.get('Value') for t in d['Tags']} == {'env': 'compat'} and d['HasMoreTags'] is False"
else
  fail "list-tags-for-stream: $(errtext tag-list2)"
fi

# --- 6b. resharding and enhanced fan-out consumers ---------------------------------------------
# Split shard 0 at the middle of its range, merge the two children back, then scale uniformly
# to 4 shards; shard 0 is read to its end, where GetRecords names its children. A consumer is
# registered, described, listed and deregistered.
if call rs-shards list-shards --stream-name "$STREAM"; then
  MID="$(jget "$WORK/rs-shards.json" "(int(d['Shards'][0]['HashKeyRange']['StartingHashKey']) + int(d['Shards'][0]['HashKeyRange']['EndingHashKey'])) // 2")"
  if call split split-shard --stream-name "$STREAM" --shard-to-split shardId-000000000000 \
       --new-starting-hash-key "$MID" && wait_active wait-split \
     && call split-shards list-shards --stream-name "$STREAM"; then
    check "split-shard: shard 0 closed, children 2 and 3 split its range at $MID" "$WORK/split-shards.json" \
      "[s['ShardId'] for s in d['Shards']] == ['shardId-000000000000', 'shardId-000000000001', 'shardId-000000000002', 'shardId-000000000003'] and 'EndingSequenceNumber' in d['Shards'][0]['SequenceNumberRange'] and all(s.get('ParentShardId') == 'shardId-000000000000' for s in d['Shards'][2:]) and d['Shards'][3]['HashKeyRange']['StartingHashKey'] == '$MID'"
  else
    fail "split-shard: $(errtext split)"
  fi
else
  fail "list-shards before split: $(errtext rs-shards)"
fi
if call merge merge-shards --stream-name "$STREAM" --shard-to-merge shardId-000000000002 \
     --adjacent-shard-to-merge shardId-000000000003 && wait_active wait-merge \
   && call merge-open list-shards --stream-name "$STREAM" --shard-filter Type=AT_LATEST; then
  check "merge-shards: open shards are 1 and the merged 4 (parents 2 and 3)" "$WORK/merge-open.json" \
    "[s['ShardId'] for s in d['Shards']] == ['shardId-000000000001', 'shardId-000000000004'] and d['Shards'][1]['ParentShardId'] == 'shardId-000000000002' and d['Shards'][1]['AdjacentParentShardId'] == 'shardId-000000000003'"
else
  fail "merge-shards: $(errtext merge)"
fi
if call end-it get-shard-iterator --stream-name "$STREAM" --shard-id shardId-000000000000 \
     --shard-iterator-type TRIM_HORIZON; then
  IT="$(jget "$WORK/end-it.json" "d['ShardIterator']")"
  for _ in $(seq 1 50); do
    call end-page get-records --shard-iterator "$IT" || break
    IT="$(jget "$WORK/end-page.json" "d.get('NextShardIterator') or ''")"
    [ -z "$IT" ] && break
  done
  check "get-records at a closed shard's end: no next iterator, ChildShards 2 and 3" "$WORK/end-page.json" \
    "'NextShardIterator' not in d and sorted(c['ShardId'] for c in d['ChildShards']) == ['shardId-000000000002', 'shardId-000000000003']"
else
  fail "get-shard-iterator on a closed shard: $(errtext end-it)"
fi
if call scale update-shard-count --stream-name "$STREAM" --target-shard-count 4 \
     --scaling-type UNIFORM_SCALING && wait_active wait-scale \
   && call scale-summary describe-stream-summary --stream-name "$STREAM"; then
  check "update-shard-count to 4: 4 open shards" "$WORK/scale-summary.json" \
    "d['StreamDescriptionSummary']['OpenShardCount'] == 4"
else
  fail "update-shard-count: $(errtext scale)"
fi
if call arn describe-stream-summary --stream-name "$STREAM"; then
  ARN="$(jget "$WORK/arn.json" "d['StreamDescriptionSummary']['StreamARN']")"
  if call consumer register-stream-consumer --stream-arn "$ARN" --consumer-name cli-consumer; then
    CARN="$(jget "$WORK/consumer.json" "d['Consumer']['ConsumerARN']")"
    check "register-stream-consumer: ARN under the stream's" "$WORK/consumer.json" \
      "d['Consumer']['ConsumerARN'].startswith('$ARN/consumer/cli-consumer:')"
    if call consumer-desc describe-stream-consumer --consumer-arn "$CARN"; then
      check "describe-stream-consumer: ACTIVE" "$WORK/consumer-desc.json" \
        "d['ConsumerDescription']['ConsumerStatus'] == 'ACTIVE' and d['ConsumerDescription']['StreamARN'] == '$ARN'"
    else
      fail "describe-stream-consumer: $(errtext consumer-desc)"
    fi
    if call consumer-list list-stream-consumers --stream-arn "$ARN"; then
      check "list-stream-consumers: the one consumer" "$WORK/consumer-list.json" \
        "[c['ConsumerName'] for c in d['Consumers']] == ['cli-consumer']"
    else
      fail "list-stream-consumers: $(errtext consumer-list)"
    fi
    if call consumer-del deregister-stream-consumer --consumer-arn "$CARN" \
       && call consumer-list2 list-stream-consumers --stream-arn "$ARN"; then
      check "deregister-stream-consumer: none left" "$WORK/consumer-list2.json" "d['Consumers'] == []"
    else
      fail "deregister-stream-consumer: $(errtext consumer-del)"
    fi
  else
    fail "register-stream-consumer: $(errtext consumer)"
  fi
else
  fail "describe-stream-summary for the ARN: $(errtext arn)"
fi

# --- 7. error case ----------------------------------------------------------------------------
MISSING="millrace-compat-missing-$$-${RANDOM}"
if call missing describe-stream --stream-name "$MISSING"; then
  fail "describe-stream on missing stream $MISSING succeeded"
elif grep -q 'ResourceNotFoundException' "$WORK/missing.err"; then
  pass "describe-stream on a missing stream fails with ResourceNotFoundException"
else
  fail "describe-stream on a missing stream: stderr lacks ResourceNotFoundException: $(errtext missing)"
fi

# --- 8. delete ----------------------------------------------------------------------------------
if call delete delete-stream --stream-name "$STREAM"; then
  STREAM_DELETED=1
  pass "delete-stream"
  if call wait-delete wait stream-not-exists --stream-name "$STREAM"; then
    pass "wait stream-not-exists"
  else
    fail "wait stream-not-exists: $(errtext wait-delete)"
  fi
else
  fail "delete-stream: $(errtext delete)"
fi
