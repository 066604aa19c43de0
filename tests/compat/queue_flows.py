#!/usr/bin/env python3
"""Kinesis queues with boto3 against `millrace up` (queues, dead letters, record distribution).

Usage (with the venv from tests/compat/setup_venv.sh):

    VENV/bin/python tests/compat/queue_flows.py --millrace target/release/millrace \
        --csv ../shared/data/telco-customer-churn.csv

Starts `millrace up` on free loopback ports in a temporary data dir (its own process group,
killed at the end) and checks, with boto3 1.44.8's own client for every operation:

 1. Every queue operation and UpdateStreamRecordDistributionStrategy answers as documented,
    and refuses bad input with AWS's error types (ValidationException, InvalidArgumentException,
    ResourceNotFoundException, ResourceInUseException; per-entry failures in Failed).
 2. Three competing consumers (threads, one client each) over a 4-shard on-demand stream that
    holds every Telco row: every row is received and acknowledged exactly once.
 3. Records not acknowledged come back after their visibility timeout, with a new receipt
    handle; a poison record becomes a dead letter after MaxReceiveCount receives, is read,
    made visible again and restored, and is received again with its count reset.
 4. kill -9 at random points (right after an acknowledgement returned, between a receive and
    its acknowledgement, and during an acknowledgement): after each restart no record whose
    acknowledgement returned is received again, every record received and not acknowledged
    before a kill is received again, and in the end every record is acknowledged.

Output: "ok - ..." / "FAIL - ..." lines, "# ..." notes, and last the line
"queue flows: N passed, M failed"; exit status 1 when M > 0.
"""

import argparse
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time

try:
    from botocore.exceptions import BotoCoreError, ClientError
    from delivery_flows import (CsvData, Procs, StartError, child_env, client, log_tail,
                                start_up, stop_up)
    from flowkit import Checks, err_text, error_code, note
except ImportError as exc:  # pragma: no cover - reported as a failed check
    sys.stderr.write(f"queue_flows.py: cannot import a dependency ({exc}); "
                     "run tests/compat/setup_venv.sh VENV and use VENV/bin/python\n")
    print("queue flows: 0 passed, 1 failed")
    sys.exit(1)

ACCOUNT = "000000000000"


def stream_arn(name):
    return f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/{name}"


def on_demand_stream(k, name, shards):
    k.create_stream(StreamName=name, ShardCount=shards)
    k.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 1})
    k.update_stream_mode(StreamARN=stream_arn(name),
                         StreamModeDetails={"StreamMode": "ON_DEMAND"})


def put_all(k, stream, payloads):
    for start in range(0, len(payloads), 500):
        chunk = payloads[start:start + 500]
        r = k.put_records(StreamName=stream, Records=[
            {"Data": d, "PartitionKey": f"k{start + i}"} for i, d in enumerate(chunk)])
        if r["FailedRecordCount"]:
            raise RuntimeError(f"put_records failed {r['FailedRecordCount']} records")


def raises(code, fn, **kw):
    """True when fn(**kw) raises a ClientError of `code`."""
    try:
        fn(**kw)
    except ClientError as exc:
        if error_code(exc) == code:
            return True
        note(f"  got {err_text(exc)}, want {code}")
        return False
    note(f"  no error, want {code}")
    return False


def handles(records):
    return [{"ReceiptHandle": r["ReceiptHandle"]} for r in records]


# ---------------------------------------------------------------------------------------------
# Flow 1: every operation, its answers and its errors


def flow_operations(ck, k):
    on_demand_stream(k, "ops", 2)
    k.create_stream(StreamName="prov", ShardCount=1)
    k.get_waiter("stream_exists").wait(StreamName="prov", WaiterConfig={"Delay": 1})
    cfg = [{"StreamARN": stream_arn("ops"), "StartingPosition": {"Type": "TRIM_HORIZON"}}]

    created = k.create_queue(QueueName="orders", StreamConfigurationList=cfg,
                             QueueAttributes={"VisibilityTimeoutSeconds": 2,
                                              "DeadLetterConfiguration": {
                                                  "TargetType": "BUILT_IN",
                                                  "MaxReceiveCount": 2}},
                             Tags={"team": "risk"})["QueueDescription"]
    arn = created["QueueARN"]
    ck.expect(created["QueueStatus"] == "CREATING" and ":queue/" in arn,
              "create_queue answers CREATING with a queue ARN")
    ck.expect(raises("ResourceInUseException", k.create_queue, QueueName="orders",
                     StreamConfigurationList=cfg),
              "create_queue of an existing name: ResourceInUseException")
    ck.expect(raises("ValidationException", k.create_queue, QueueName="bad name",
                     StreamConfigurationList=cfg),
              "create_queue with a name off the pattern: ValidationException")
    ck.expect(raises("InvalidArgumentException", k.create_queue, QueueName="p",
                     StreamConfigurationList=[{"StreamARN": stream_arn("prov")}]),
              "create_queue on a PROVISIONED stream: InvalidArgumentException")
    ck.expect(raises("ResourceNotFoundException", k.create_queue, QueueName="m",
                     StreamConfigurationList=[{"StreamARN": stream_arn("missing")}]),
              "create_queue on a missing stream: ResourceNotFoundException")

    d = k.describe_queue(QueueARN=arn)["QueueDescription"]
    ck.expect(d["QueueStatus"] == "ACTIVE" and d["QueueName"] == "orders"
              and d["QueueAttributes"]["VisibilityTimeoutSeconds"] == 2
              and d["StreamConfigurationList"][0]["StreamARN"] == stream_arn("ops"),
              "describe_queue: ACTIVE, its attributes and stream")
    ck.expect(raises("ResourceNotFoundException", k.describe_queue, QueueARN=arn + "x"),
              "describe_queue of an unknown queue: ResourceNotFoundException")
    ck.expect(raises("ValidationException", k.describe_queue, QueueARN="arn:aws:nope"),
              "describe_queue of a malformed ARN: ValidationException")

    k.create_queue(QueueName="second", StreamConfigurationList=cfg)
    page = k.list_queues(MaxResults=1)
    rest = k.list_queues(NextToken=page["NextToken"])
    names = [q["QueueName"] for q in page["QueueSummaries"] + rest["QueueSummaries"]]
    ck.expect(names == ["orders", "second"] and "NextToken" not in rest,
              f"list_queues pages by name with NextToken ({names})")
    filtered = k.list_queues(StreamFilter=[{"StreamARN": stream_arn("prov")}])
    ck.expect(filtered["QueueSummaries"] == [], "list_queues with a StreamFilter")
    ck.expect(k.list_tags_for_resource(ResourceARN=arn)["Tags"] ==
              [{"Key": "team", "Value": "risk"}], "a queue's tags by list_tags_for_resource")

    u = k.update_queue(QueueARN=arn, QueueAttributes={"VisibilityTimeoutSeconds": 1})
    ck.expect(u["QueueDescription"]["QueueStatus"] == "UPDATING" and
              u["QueueDescription"]["QueueAttributes"]["VisibilityTimeoutSeconds"] == 1 and
              u["QueueDescription"]["QueueAttributes"]["DeadLetterConfiguration"]
              ["MaxReceiveCount"] == 2,
              "update_queue answers UPDATING with the new timeout, the rest unchanged")
    ck.expect(raises("ValidationException", k.update_queue, QueueARN=arn,
                     QueueAttributes={"VisibilityTimeoutSeconds": 99999}),
              "update_queue out of range: ValidationException")

    put_all(k, "ops", [b"poison"])
    got = k.receive_queue_records(QueueARN=arn, WaitTimeSeconds=2)["QueueRecords"]
    ck.expect(len(got) == 1 and got[0]["Data"] == b"poison" and got[0]["ReceiveCount"] == 1
              and got[0]["PartitionKey"] == "k0", "receive_queue_records: the record, count 1")
    v = k.update_queue_records_visibility(QueueARN=arn, Entries=[
        {"ReceiptHandle": got[0]["ReceiptHandle"], "VisibilityTimeoutSeconds": 0}])
    ck.expect(len(v["Successful"]) == 1 and v["Failed"] == [],
              "update_queue_records_visibility to 0")
    again = k.receive_queue_records(QueueARN=arn, WaitTimeSeconds=2)["QueueRecords"]
    ck.expect(len(again) == 1 and again[0]["ReceiveCount"] == 2 and
              again[0]["RecordId"] == got[0]["RecordId"] and
              again[0]["ReceiptHandle"] != got[0]["ReceiptHandle"],
              "received again at once, count 2, same RecordId, new receipt handle")
    stale = k.acknowledge_queue_records(QueueARN=arn, Entries=handles(got))
    ck.expect(stale["Successful"] == [] and
              stale["Failed"][0]["ErrorCode"] == "InvalidArgumentException",
              "acknowledge with a stale receipt handle: Failed InvalidArgumentException")
    time.sleep(1.2)
    none = k.receive_queue_records(QueueARN=arn, WaitTimeSeconds=1)["QueueRecords"]
    ck.expect(none == [], "after MaxReceiveCount receives the record is not received")
    dead = k.receive_dead_letter_queue_records(QueueARN=arn, WaitTimeSeconds=1,
                                               VisibilityTimeoutSeconds=30)["QueueRecords"]
    ck.expect(len(dead) == 1 and dead[0]["Data"] == b"poison",
              "receive_dead_letter_queue_records: the poison record")
    dv = k.update_dead_letter_queue_records_visibility(QueueARN=arn, Entries=[
        {"ReceiptHandle": dead[0]["ReceiptHandle"], "VisibilityTimeoutSeconds": 0}])
    ck.expect(len(dv["Successful"]) == 1, "update_dead_letter_queue_records_visibility")
    dead = k.receive_dead_letter_queue_records(QueueARN=arn, WaitTimeSeconds=1)["QueueRecords"]
    wrong = k.acknowledge_queue_records(QueueARN=arn, Entries=handles(dead))
    ck.expect(wrong["Failed"] and wrong["Failed"][0]["ErrorCode"] == "InvalidArgumentException",
              "a dead-letter handle on acknowledge_queue_records: Failed")
    r = k.restore_dead_letter_queue_records(QueueARN=arn, Entries=handles(dead))
    ck.expect(len(r["Successful"]) == 1, "restore_dead_letter_queue_records")
    back = k.receive_queue_records(QueueARN=arn, WaitTimeSeconds=2)["QueueRecords"]
    ck.expect(len(back) == 1 and back[0]["ReceiveCount"] == 1,
              "the restored record is received again with its count reset")
    a = k.acknowledge_queue_records(QueueARN=arn, Entries=handles(back))
    ck.expect(len(a["Successful"]) == 1 and a["Failed"] == [], "acknowledge_queue_records")

    put_all(k, "ops", [b"second poison"])
    for _ in range(2):
        k.receive_queue_records(QueueARN=arn, WaitTimeSeconds=3)
    time.sleep(1.2)
    dead = k.receive_dead_letter_queue_records(QueueARN=arn, WaitTimeSeconds=2)["QueueRecords"]
    ad = k.acknowledge_dead_letter_queue_records(QueueARN=arn, Entries=handles(dead))
    ck.expect(len(dead) == 1 and len(ad["Successful"]) == 1,
              "acknowledge_dead_letter_queue_records discards a dead letter")
    forged = k.acknowledge_queue_records(QueueARN=arn, Entries=[{"ReceiptHandle": "forged"}])
    ck.expect(forged["Failed"][0]["ErrorCode"] == "InvalidArgumentException",
              "a forged receipt handle: Failed InvalidArgumentException")
    ck.expect(raises("ValidationException", k.receive_queue_records, QueueARN=arn, Limit=11),
              "receive_queue_records Limit 11: ValidationException")

    ck.expect(raises("ResourceInUseException", k.delete_stream, StreamName="ops",
                     EnforceConsumerDeletion=True),
              "delete_stream with queues on it: ResourceInUseException")
    k.delete_queue(QueueARN=arn)
    ck.expect(raises("ResourceNotFoundException", k.describe_queue, QueueARN=arn),
              "delete_queue: the queue is gone")

    k.update_stream_record_distribution_strategy(StreamARN=stream_arn("ops"),
                                                 RecordDistributionStrategy="AUTO")
    s = k.describe_stream_summary(StreamName="ops")["StreamDescriptionSummary"]
    shards = {k.put_record(StreamName="ops", Data=b"x", PartitionKey="same")["ShardId"]
              for _ in range(20)}
    ck.expect(s.get("RecordDistributionStrategy") == "AUTO" and len(shards) == 2,
              f"update_stream_record_distribution_strategy AUTO spreads one key ({shards})")
    ck.expect(raises("InvalidArgumentException", k.update_stream_record_distribution_strategy,
                     StreamARN=stream_arn("prov"), RecordDistributionStrategy="AUTO"),
              "record distribution on a PROVISIONED stream: InvalidArgumentException")


# ---------------------------------------------------------------------------------------------
# Flow 2: competing consumers over the Telco rows


def flow_competing(ck, k, url, rows):
    on_demand_stream(k, "telco", 4)
    arn = k.create_queue(QueueName="telco-work", StreamConfigurationList=[
        {"StreamARN": stream_arn("telco"), "StartingPosition": {"Type": "TRIM_HORIZON"}}],
        QueueAttributes={"VisibilityTimeoutSeconds": 300})["QueueDescription"]["QueueARN"]
    payloads = [json.dumps(r, sort_keys=True).encode() for r in rows]
    t0 = time.monotonic()
    put_all(k, "telco", payloads)
    note(f"flow 2: put {len(payloads)} Telco rows in {time.monotonic() - t0:.1f}s")
    results, errors = [[] for _ in range(3)], []

    def consume(i):
        c = client("kinesis", url)
        try:
            while True:
                got = c.receive_queue_records(QueueARN=arn, WaitTimeSeconds=1)["QueueRecords"]
                if not got:
                    return
                a = c.acknowledge_queue_records(QueueARN=arn, Entries=handles(got))
                if a["Failed"]:
                    errors.append(f"consumer {i}: {a['Failed'][:2]}")
                ok = {e["ReceiptHandle"] for e in a["Successful"]}
                results[i].extend(r["Data"] for r in got if r["ReceiptHandle"] in ok)
        except (ClientError, BotoCoreError) as exc:
            errors.append(f"consumer {i}: {err_text(exc)}")

    t0 = time.monotonic()
    threads = [threading.Thread(target=consume, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    dt = time.monotonic() - t0
    acked = [d for r in results for d in r]
    problems = list(errors)
    if len(acked) != len(payloads):
        problems.append(f"{len(acked)} acknowledgements for {len(payloads)} rows")
    if len(set(acked)) != len(acked):
        problems.append(f"{len(acked) - len(set(acked))} rows acknowledged twice")
    if set(acked) != set(payloads):
        problems.append(f"{len(set(payloads) - set(acked))} rows never acknowledged")
    if not all(results):
        problems.append(f"a consumer got nothing: {[len(r) for r in results]}")
    note(f"flow 2: 3 consumers drained {len(acked)} rows in {dt:.1f}s "
         f"({[len(r) for r in results]})")
    ck.check(f"flow 2: three competing consumers over 4 shards acknowledge each of the "
             f"{len(payloads)} Telco rows exactly once", problems)


def flow_counts(ck, k, log):
    """/status and /metrics count a queue's visible, in-flight and dead-letter records."""
    import re
    import urllib.request
    with open(log, encoding="utf-8", errors="replace") as f:
        admin = re.search(r"admin=(http://[0-9.:]+)", f.read()).group(1)
    arn = k.create_queue(QueueName="counted", StreamConfigurationList=[
        {"StreamARN": stream_arn("telco"), "StartingPosition": {"Type": "TRIM_HORIZON"}}],
        QueueAttributes={"VisibilityTimeoutSeconds": 300})["QueueDescription"]["QueueARN"]
    got = k.receive_queue_records(QueueARN=arn, Limit=10, WaitTimeSeconds=1)["QueueRecords"]
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    status = json.loads(opener.open(f"{admin}/status", timeout=10).read())
    row = next((q for q in status.get("queues", []) if q["name"] == "counted"), {})
    ck.expect(row.get("in_flight") == len(got) == 10 and row.get("dead_letter") == 0 and
              row.get("visible", 0) >= 7033,
              f"/status counts the queue's records by state ({row})")
    metrics = opener.open(f"{admin}/metrics", timeout=10).read().decode()
    ck.expect('millrace_queue_records{queue="counted",stream="telco",state="in_flight"} 10'
              in metrics, "/metrics has millrace_queue_records gauges")


# ---------------------------------------------------------------------------------------------
# Flow 3: kill -9 at random points


class Ledger:
    """What the consumer knows for sure across crashes."""

    def __init__(self):
        self.confirmed = {}      # RecordId -> time its acknowledgement returned
        self.uncertain = set()   # acknowledgements in flight when the server died
        self.unacked_at_kill = set()
        self.violations = []
        self.redelivered_after_kill = set()

    def received(self, rid):
        if rid in self.confirmed:
            self.violations.append(f"{rid} received again after its acknowledgement returned")
        if rid in self.unacked_at_kill:
            self.redelivered_after_kill.add(rid)


def flow_kill9(ck, args, tmp, procs, env):
    data_dir = os.path.join(tmp, "kill9")
    rng = random.Random(args.seed)
    log = os.path.join(tmp, "kill9-up-0.log")
    p, url = start_up(procs, args.millrace, data_dir, log, env)
    k = client("kinesis", url)
    on_demand_stream(k, "crash", 4)
    arn = k.create_queue(QueueName="crash-q", StreamConfigurationList=[
        {"StreamARN": stream_arn("crash"), "StartingPosition": {"Type": "TRIM_HORIZON"}}],
        QueueAttributes={"VisibilityTimeoutSeconds": 2})["QueueDescription"]["QueueARN"]
    n = args.kill_records
    put_all(k, "crash", [f"crash-{i}".encode() for i in range(n)])
    ledger = Ledger()
    kills = ["after-ack", "before-ack", "during-ack", "after-ack", "during-ack"]
    rng.shuffle(kills)
    for cycle, mode in enumerate(kills, 1):
        for _ in range(rng.randint(3, 25)):
            got = k.receive_queue_records(QueueARN=arn, WaitTimeSeconds=1)["QueueRecords"]
            for r in got:
                ledger.received(r["RecordId"])
            a = k.acknowledge_queue_records(QueueARN=arn, Entries=handles(got)) if got else None
            ok = {e["ReceiptHandle"] for e in a["Successful"]} if a else set()
            for r in got:
                if r["ReceiptHandle"] in ok:
                    ledger.confirmed[r["RecordId"]] = time.monotonic()
        got = k.receive_queue_records(QueueARN=arn, WaitTimeSeconds=1)["QueueRecords"]
        for r in got:
            ledger.received(r["RecordId"])
        if mode == "after-ack" and got:
            a = k.acknowledge_queue_records(QueueARN=arn, Entries=handles(got))
            ok = {e["ReceiptHandle"] for e in a["Successful"]}
            for r in got:
                if r["ReceiptHandle"] in ok:
                    ledger.confirmed[r["RecordId"]] = time.monotonic()
        elif mode == "before-ack":
            ledger.unacked_at_kill |= {r["RecordId"] for r in got}
        elif mode == "during-ack" and got:
            ledger.uncertain |= {r["RecordId"] for r in got}
            c = client("kinesis", url)
            t = threading.Thread(target=lambda: _quiet(c.acknowledge_queue_records,
                                                       QueueARN=arn, Entries=handles(got)))
            t.start()
            time.sleep(rng.uniform(0, 0.005))
        procs.kill(p)
        if mode == "during-ack":
            t.join(timeout=30)
        note(f"flow 3: kill -9 #{cycle} {mode} ({len(ledger.confirmed)} acknowledged so far)")
        log = os.path.join(tmp, f"kill9-up-{cycle}.log")
        p, url = start_up(procs, args.millrace, data_dir, log, env)
        k = client("kinesis", url)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        got = k.receive_queue_records(QueueARN=arn, WaitTimeSeconds=3)["QueueRecords"]
        if not got:
            break
        for r in got:
            ledger.received(r["RecordId"])
        a = k.acknowledge_queue_records(QueueARN=arn, Entries=handles(got))
        ok = {e["ReceiptHandle"] for e in a["Successful"]}
        for r in got:
            if r["ReceiptHandle"] in ok:
                ledger.confirmed[r["RecordId"]] = time.monotonic()
    problems = list(ledger.violations)
    missing = n - len(set(ledger.confirmed) | ledger.uncertain)
    if missing:
        problems.append(f"{missing} of {n} records never acknowledged")
    lost = ledger.unacked_at_kill - ledger.redelivered_after_kill - set(ledger.confirmed)
    if lost:
        problems.append(f"{len(lost)} records received but not acknowledged before a kill "
                        f"were never received again")
    ck.check(f"flow 3: {len(kills)} kill -9s at random points: no acknowledged record comes "
             f"back, every unacknowledged one does, all {n} acknowledged in the end "
             f"({len(ledger.unacked_at_kill)} redelivered after kills)", problems)
    ck.check("flow 3: up stops cleanly after the kills", stop_up(procs, p, log))


def _quiet(fn, **kw):
    try:
        fn(**kw)
    except Exception:  # noqa: BLE001 - the server is being killed under it
        pass


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--millrace", required=True)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--kill-records", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--keep-tmp", action="store_true")
    args = ap.parse_args(argv)
    args.millrace = os.path.abspath(args.millrace)
    note(f"seed {args.seed} (--seed to repeat)")
    ck = Checks("queue flows")
    procs = Procs()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    env = child_env()
    os.environ.clear()
    os.environ.update(env)
    tmp = tempfile.mkdtemp(prefix="millrace-queue-flows-")
    try:
        rows = CsvData(args.csv).rows
        log = os.path.join(tmp, "up.log")
        p, url = start_up(procs, args.millrace, os.path.join(tmp, "main"), log, env)
        k = client("kinesis", url)
        for name, flow in [("operations", lambda: flow_operations(ck, k)),
                           ("competing consumers", lambda: flow_competing(ck, k, url, rows))]:
            try:
                flow()
            except (ClientError, BotoCoreError, RuntimeError) as exc:
                ck.check(f"{name}: ran to the end", [err_text(exc)] + log_tail(log))
        try:
            flow_counts(ck, k, log)
        except (ClientError, BotoCoreError, RuntimeError, OSError, ValueError) as exc:
            ck.check("queue counts: ran to the end", [err_text(exc)])
        ck.check("up stops cleanly", stop_up(procs, p, log))
        try:
            flow_kill9(ck, args, tmp, procs, env)
        except (ClientError, BotoCoreError, RuntimeError) as exc:
            ck.check("flow 3: ran to the end", [err_text(exc)])
    except StartError as exc:
        ck.check("millrace up starts", exc.problems)
    finally:
        procs.cleanup()
        if args.keep_tmp:
            note(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(ck.summary())
    return 1 if ck.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
