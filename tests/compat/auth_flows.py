#!/usr/bin/env python3
"""Identities with real signed requests: boto3 and the AWS CLI against `millrace up` under
`[auth] mode = "enforce"` (then "log").

Usage (with the venv from tests/compat/setup_venv.sh):

    VENV/bin/python tests/compat/auth_flows.py --millrace target/debug/millrace \
        --examples examples --aws-cli VENV/bin/aws

Copies examples/identities.toml, issues a key to each of its roles with `millrace identity
add`, starts `millrace up` with that file, and checks:

 1. `identity add` prints AccessKeyId and SecretAccessKey; the file never holds a secret;
    `identity list` shows the principals and no secret.
 2. Each SigV4 failure gets AWS's error: no signature (MissingAuthenticationTokenException),
    an unknown key (UnrecognizedClientException), a wrong secret and a tampered body
    (InvalidSignatureException), a request signed 16 minutes ago (RequestExpired).
 3. The roles: the admin creates streams and delivery streams; the producer puts into
    `churn` only; the data scientist reads (GetRecords, ListStreams, DescribeStreamSummary,
    DescribeDeliveryStream) and is denied DeleteStream, SplitShard, PutRecord and
    DeleteDeliveryStream, with AccessDeniedException naming the action and the resource.
 4. Resource policies (PutResourcePolicy): an Allow lets the producer put into another
    stream; a Deny stops the data scientist reading `churn`.
 5. Fan-out: the data scientist's SubscribeToShard event stream; the producer's is denied.
    The AWS CLI with the data scientist's key: list-streams works, delete-stream is refused.
 6. A principal added while `up` runs can sign in within seconds.
 7. The audit log holds the denials and the administrative actions, one JSON line each.
 8. `mode = "log"`: what enforce would refuse is let through and audited as would-deny.
 9. `up` refuses to listen beyond loopback with mode "off" unless --insecure.
10. The admin API: an unsigned GET /status is refused; `millrace status` signs with the
    admin's key from the environment and works, and is denied with the producer's.
11. The endpoint's SageMaker Runtime API: the data scientist invokes, the producer is denied,
    an unsigned request is refused; /ping stays open.
12. TLS (`[server] tls = true`, a self-signed certificate made on first start): the AWS CLI
    with `--ca-bundle` lists streams, without it refuses the certificate; boto3 with
    `verify=cert.pem` works; a policy that denies `aws:SecureTransport` false lets a principal
    in over HTTPS only.

Output: "ok - ..." / "FAIL - ..." lines, "# ..." notes, and last the line
"auth flows: N passed, M failed"; exit status 1 when M > 0.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

try:
    import boto3
    import botocore.auth
    from botocore import UNSIGNED
    from botocore.awsrequest import AWSRequest
    from botocore.config import Config
    from botocore.credentials import Credentials
    from botocore.exceptions import BotoCoreError, ClientError
    from delivery_flows import REGION, Procs, StartError, child_env, log_tail, start_up, stop_up
    from flowkit import Checks, err_text, error_code, free_port, note
except ImportError as exc:  # pragma: no cover - reported as a failed check
    sys.stderr.write(f"auth_flows.py: cannot import a dependency ({exc}); "
                     "run tests/compat/setup_venv.sh VENV and use VENV/bin/python\n")
    print("auth flows: 0 passed, 1 failed")
    sys.exit(1)

ACCOUNT = "000000000000"


def arn(name):
    return f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"


def user(name):
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


def kclient(url, key=None, service="kinesis", unsigned=False, attempts=2):
    cfg = {"region_name": REGION, "retries": {"max_attempts": attempts, "mode": "standard"}}
    if unsigned:
        cfg["signature_version"] = UNSIGNED
    kw = {}
    if key:
        kw = {"aws_access_key_id": key["AccessKeyId"],
              "aws_secret_access_key": key["SecretAccessKey"]}
    return boto3.session.Session().client(service, endpoint_url=url, region_name=REGION,
                                          config=Config(**cfg), **kw)


def refused(code, fn, *, contains=(), **kw):
    """[] when fn(**kw) raises ClientError `code` whose message holds every `contains`."""
    try:
        fn(**kw)
    except ClientError as exc:
        msg = exc.response.get("Error", {}).get("Message", "")
        problems = [] if error_code(exc) == code else [f"got {err_text(exc)}, want {code}"]
        problems += [f"message lacks {c!r}: {msg}" for c in contains if c not in msg]
        return problems
    return [f"succeeded, want {code}"]


def allowed(fn, **kw):
    try:
        fn(**kw)
        return []
    except ClientError as exc:
        return [err_text(exc)]


def identity(binary, ids, name, *policies):
    argv = [binary, "identity", "add", name, "--identities", ids]
    for p in policies:
        argv += ["--policy", p]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"identity add {name}: {out.stderr.strip()}")
    return json.loads(out.stdout)


def raw_post(url, body, headers):
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def signed_request(url, key, body, target, at=None):
    """A Kinesis request signed by botocore's SigV4Auth (at `at`, default now)."""
    req = AWSRequest(method="POST", url=url + "/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": f"Kinesis_20131202.{target}"})
    creds = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    real = botocore.auth.get_current_datetime
    if at is not None:
        botocore.auth.get_current_datetime = lambda *a, **k: at
    try:
        botocore.auth.SigV4Auth(creds, "kinesis", REGION).add_auth(req)
    finally:
        botocore.auth.get_current_datetime = real
    return dict(req.headers.items())


def flow_identities(ck, binary, tmp, examples):
    ids = os.path.join(tmp, "identities.toml")
    shutil.copy(os.path.join(examples, "identities.toml"), ids)
    keys = {n: identity(binary, ids, n) for n in ("admin", "producer", "data-scientist")}
    problems = []
    for n, k in keys.items():
        if k.get("UserName") != n or not k.get("AccessKeyId", "").startswith("AKIA") or \
                len(k.get("SecretAccessKey", "")) != 40:
            problems.append(f"{n}: {k}")
    text = open(ids, encoding="utf-8").read()
    problems += [f"{n}'s secret is in the file" for n, k in keys.items()
                 if k["SecretAccessKey"] in text]
    ck.check("identity add prints a key per role; the file holds no secret", problems)
    out = subprocess.run([binary, "identity", "list", "--identities", ids], capture_output=True,
                         text=True, timeout=60, check=False)
    listed = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    names = sorted(p["UserName"] for p in listed)
    ck.check("identity list shows the roles and no secret",
             [] if out.returncode == 0 and names == ["admin", "data-scientist", "producer"]
             and "Secret" not in out.stdout else [f"rc {out.returncode}: {out.stdout}"])
    return ids, keys


def flow_signatures(ck, url, keys):
    ck.check("an unsigned request is MissingAuthenticationTokenException", refused(
        "MissingAuthenticationTokenException", kclient(url, unsigned=True).list_streams))
    ghost = {"AccessKeyId": "AKIAGHOSTGHOSTGHOST2", "SecretAccessKey": "x" * 40}
    ck.check("an unknown access key is UnrecognizedClientException", refused(
        "UnrecognizedClientException", kclient(url, ghost).list_streams))
    wrong = dict(keys["admin"], SecretAccessKey="y" * 40)
    ck.check("a wrong secret is InvalidSignatureException", refused(
        "InvalidSignatureException", kclient(url, wrong).list_streams,
        contains=("signature we calculated does not match",)))
    body = json.dumps({"StreamName": "churn", "PartitionKey": "k", "Data": "aGk="}).encode()
    headers = signed_request(url, keys["producer"], body, "PutRecord")
    status, ok = raw_post(url + "/", body, headers)
    tampered = body.replace(b"aGk=", b"aGl=")
    status2, bad = raw_post(url + "/", tampered, headers)
    ck.check("a signed PutRecord is taken; the same signature over a tampered body is not",
             [] if status == 200 and "SequenceNumber" in ok and status2 == 400
             and bad.get("__type") == "InvalidSignatureException"
             else [f"{status} {ok}", f"{status2} {bad}"])
    ago = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - \
        datetime.timedelta(minutes=16)
    headers = signed_request(url, keys["admin"], b"{}", "ListStreams", at=ago)
    status, out = raw_post(url + "/", b"{}", headers)
    ck.check("a request signed 16 minutes ago is RequestExpired",
             [] if status == 400 and out.get("__type") == "RequestExpired"
             else [f"{status} {out}"])
    ago = ago + datetime.timedelta(minutes=2)
    headers = signed_request(url, keys["admin"], b"{}", "ListStreams", at=ago)
    status, out = raw_post(url + "/", b"{}", headers)
    ck.check("a request signed 14 minutes ago is still taken",
             [] if status == 200 else [f"{status} {out}"])


def flow_roles(ck, url, keys):
    admin = kclient(url, keys["admin"])
    producer = kclient(url, keys["producer"])
    ds = kclient(url, keys["data-scientist"])
    admin.create_stream(StreamName="other", ShardCount=1)
    admin.get_waiter("stream_exists").wait(StreamName="other", WaiterConfig={"Delay": 1})
    ck.check("admin: creates a stream and lists streams",
             allowed(admin.list_streams))
    ck.check("producer: PutRecord and PutRecords into churn", allowed(
        producer.put_record, StreamName="churn", Data=b"x", PartitionKey="a") + allowed(
        producer.put_records, StreamName="churn",
        Records=[{"Data": b"y", "PartitionKey": "b"}]))
    ck.check("producer: PutRecord into another stream is AccessDeniedException", refused(
        "AccessDeniedException", producer.put_record, StreamName="other", Data=b"x",
        PartitionKey="a", contains=(user("producer"), "kinesis:PutRecord", arn("other"))))
    ck.check("producer: ListStreams is denied", refused(
        "AccessDeniedException", producer.list_streams))
    shard = ds.list_shards(StreamName="churn")["Shards"][0]["ShardId"]
    it = ds.get_shard_iterator(StreamName="churn", ShardId=shard,
                               ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    ck.check("data scientist: GetRecords, ListStreams, DescribeStreamSummary", allowed(
        ds.get_records, ShardIterator=it) + allowed(ds.list_streams) + allowed(
        ds.describe_stream_summary, StreamName="churn"))
    ck.check("data scientist: DeleteStream is denied by the explicit deny", refused(
        "AccessDeniedException", ds.delete_stream, StreamName="churn",
        contains=("kinesis:DeleteStream", "explicit deny")))
    ck.check("data scientist: SplitShard is denied", refused(
        "AccessDeniedException", ds.split_shard, StreamName="churn", ShardToSplit=shard,
        NewStartingHashKey="1"))
    ck.check("data scientist: PutRecord is denied (no policy allows it)", refused(
        "AccessDeniedException", ds.put_record, StreamName="churn", Data=b"x",
        PartitionKey="a", contains=("no identity-based or resource-based policy allows",)))
    fh_admin = kclient(url, keys["admin"], service="firehose")
    fh_ds = kclient(url, keys["data-scientist"], service="firehose")
    fh_admin.create_delivery_stream(
        DeliveryStreamName="to-lake", DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": f"arn:aws:iam::{ACCOUNT}:role/firehose", "BucketARN": "arn:aws:s3:::lake",
            "Prefix": "fh/"})
    ck.check("firehose: the data scientist describes, and may not delete", allowed(
        fh_ds.describe_delivery_stream, DeliveryStreamName="to-lake") + refused(
        "AccessDeniedException", fh_ds.delete_delivery_stream, DeliveryStreamName="to-lake",
        contains=("firehose:DeleteDeliveryStream",
                  f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/to-lake")))
    ck.check("firehose: the producer may not put (its policy names only Kinesis)", refused(
        "AccessDeniedException", kclient(url, keys["producer"], service="firehose").put_record,
        DeliveryStreamName="to-lake", Record={"Data": b"x"}))


def flow_fanout(ck, url, keys):
    """SubscribeToShard (an event stream) as the data scientist; the producer is denied."""
    ds = kclient(url, keys["data-scientist"])
    producer = kclient(url, keys["producer"])
    consumer = ds.register_stream_consumer(StreamARN=arn("churn"), ConsumerName="ds")
    carn = consumer["Consumer"]["ConsumerARN"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and ds.describe_stream_consumer(
            ConsumerARN=carn)["ConsumerDescription"]["ConsumerStatus"] != "ACTIVE":
        time.sleep(0.2)
    shard = ds.list_shards(StreamName="churn")["Shards"][0]["ShardId"]
    sub = ds.subscribe_to_shard(ConsumerARN=carn, ShardId=shard,
                                StartingPosition={"Type": "TRIM_HORIZON"})
    first = next(iter(sub["EventStream"]))
    sub["EventStream"].close()
    ck.check("fan-out: the data scientist registers a consumer and subscribes (event stream)",
             [] if "SubscribeToShardEvent" in first else [f"first event {sorted(first)}"])
    ck.check("fan-out: the producer may not subscribe", refused(
        "AccessDeniedException", producer.subscribe_to_shard, ConsumerARN=carn, ShardId=shard,
        StartingPosition={"Type": "LATEST"}, contains=("kinesis:SubscribeToShard", carn)))


def flow_resource_policies(ck, url, keys):
    admin = kclient(url, keys["admin"])
    producer = kclient(url, keys["producer"])
    ds = kclient(url, keys["data-scientist"])
    admin.put_resource_policy(ResourceARN=arn("other"), Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": user("producer")},
            "Action": "kinesis:PutRecord", "Resource": arn("other")}]}))
    ck.check("resource policy: an Allow on the stream lets the producer put into it", allowed(
        producer.put_record, StreamName="other", Data=b"x", PartitionKey="a"))
    admin.put_resource_policy(ResourceARN=arn("churn"), Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Deny", "Principal": {"AWS": user("data-scientist")},
            "Action": "kinesis:DescribeStreamSummary", "Resource": arn("churn")}]}))
    ck.check("resource policy: a Deny on the stream beats the identity's Allow", refused(
        "AccessDeniedException", ds.describe_stream_summary, StreamName="churn",
        contains=("explicit deny",)))
    admin.delete_resource_policy(ResourceARN=arn("churn"))
    ck.check("resource policy: deleted, the identity's Allow applies again", allowed(
        ds.describe_stream_summary, StreamName="churn"))


def flow_cli(ck, url, keys, aws_cli, tmp):
    env = child_env()
    env.update({"AWS_ACCESS_KEY_ID": keys["data-scientist"]["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": keys["data-scientist"]["SecretAccessKey"],
                "AWS_CONFIG_FILE": os.path.join(tmp, "no-config"),
                "AWS_SHARED_CREDENTIALS_FILE": os.path.join(tmp, "no-credentials")})
    base = [aws_cli, "--endpoint-url", url, "--region", REGION, "--output", "json", "kinesis"]
    ls = subprocess.run(base + ["list-streams"], capture_output=True, text=True, env=env,
                        timeout=120, check=False)
    rm = subprocess.run(base + ["delete-stream", "--stream-name", "churn"], capture_output=True,
                        text=True, env=env, timeout=120, check=False)
    problems = []
    if ls.returncode != 0 or "churn" not in ls.stdout:
        problems.append(f"list-streams rc {ls.returncode}: {ls.stdout} {ls.stderr}")
    if rm.returncode == 0 or "AccessDeniedException" not in rm.stderr:
        problems.append(f"delete-stream rc {rm.returncode}: {rm.stderr}")
    ck.check("AWS CLI as the data scientist: list-streams works, delete-stream is denied",
             problems)


def flow_live_add(ck, binary, url, ids, tmp):
    policy = os.path.join(tmp, "lister.json")
    with open(policy, "w", encoding="utf-8") as f:
        json.dump({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "kinesis:ListStreams", "Resource": "*"}]}, f)
    key = identity(binary, ids, "late", policy)
    c = kclient(url, key, attempts=1)
    deadline = time.monotonic() + 10
    last = None
    while time.monotonic() < deadline:
        try:
            c.list_streams()
            last = None
            break
        except ClientError as exc:
            last = err_text(exc)
            time.sleep(0.5)
    ck.check("a principal added while up runs signs in within seconds",
             [last] if last else [])


def flow_audit(ck, data_dir):
    path = os.path.join(data_dir, "state", "audit", "audit.log")
    try:
        lines = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    except (OSError, ValueError) as exc:
        ck.check("audit log is JSON lines", [str(exc)])
        return
    denied = [e for e in lines if e["outcome"] == "denied"
              and e["action"] == "kinesis:DeleteStream"
              and e["principal"] == user("data-scientist") and e["resource"] == arn("churn")]
    created = [e for e in lines if e["outcome"] == "allowed"
               and e["action"] == "kinesis:CreateStream" and e["principal"] == user("admin")]
    unsigned = [e for e in lines if e["principal"] == "anonymous"
                and "MissingAuthenticationToken" in e.get("reason", "")]
    reads = [e for e in lines if e["action"] == "kinesis:GetRecords"]
    ck.check("audit log: the denied DeleteStream, the admin's CreateStream, the unsigned "
             "request; no line for reads",
             [] if denied and created and unsigned and not reads
             else [f"{len(lines)} lines: denied {len(denied)}, created {len(created)}, "
                   f"unsigned {len(unsigned)}, reads {len(reads)}"])


def write_config(path, mode, ids, endpoint_port=None, tls=False):
    with open(path, "w", encoding="utf-8") as f:
        if tls:
            f.write("[server]\ntls = true\n\n")
        f.write(f'[auth]\nmode = "{mode}"\nidentities = "{ids}"\n\n'
                '[[stream]]\nname = "churn"\nshards = 2\n')
        if endpoint_port:
            f.write(f'\n[endpoint]\nmodels = ["m"]\naddr = "127.0.0.1:{endpoint_port}"\n')


def train_tiny(binary, data_dir, tmp):
    """Model `m` on 80 rows id,x,z,label (label: x > z), in `data_dir`'s registry."""
    csv_path = os.path.join(tmp, "tiny.csv")
    with open(csv_path, "w", encoding="utf-8") as f:
        f.write("id,x,z,label\n")
        for i in range(80):
            x, z = (i * 37 % 100) / 100, (i * 61 % 100) / 100
            f.write(f"c{i},{x},{z},{'yes' if x > z else 'no'}\n")
    out = subprocess.run([binary, "--data-dir", data_dir, "train", "--target", "label",
                          "--name", "m", "--data", csv_path, "--folds", "2"],
                         capture_output=True, text=True, timeout=300, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"train: {out.stderr[-2000:]}")


def admin_url(log):
    text = open(log, encoding="utf-8", errors="replace").read()
    m = re.search(r"admin=(https?://[0-9.]+:[0-9]+)", text)
    if not m:
        raise RuntimeError("no admin= line in up's log")
    return m.group(1)


def flow_admin(ck, binary, url, keys, env):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url + "/status", timeout=10) as r:
            problems = [f"unsigned GET /status answered {r.status}"]
    except urllib.error.HTTPError as e:
        problems = [] if e.code == 403 and \
            e.headers.get("x-amzn-errortype") == "MissingAuthenticationTokenException" \
            else [f"{e.code} {e.headers.get('x-amzn-errortype')}"]
    ck.check("admin API: an unsigned GET /status is MissingAuthenticationToken (403)", problems)

    def status(key):
        e = dict(env, AWS_ACCESS_KEY_ID=key["AccessKeyId"],
                 AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"])
        return subprocess.run([binary, "status", "--admin-url", url], capture_output=True,
                              text=True, env=e, timeout=60, check=False)
    ok, denied = status(keys["admin"]), status(keys["producer"])
    ck.check("admin API: millrace status signs as the admin; the producer is denied",
             [] if ok.returncode == 0 and "churn" in ok.stdout and denied.returncode != 0
             and "AccessDeniedException" in denied.stderr
             else [f"admin rc {ok.returncode}: {ok.stderr[-800:]}",
                   f"producer rc {denied.returncode}: {denied.stderr[-800:]}"])


def flow_endpoint(ck, url, keys):
    body = json.dumps({"id": "c1", "x": 0.9, "z": 0.1})

    def invoke(c):
        return c.invoke_endpoint(EndpointName="m", ContentType="application/json", Body=body)

    ds = kclient(url, keys["data-scientist"], service="sagemaker-runtime")
    try:
        out = invoke(ds)["Body"].read()
        problems = [] if out else ["empty prediction"]
    except ClientError as exc:
        problems = [err_text(exc)]
    ck.check("endpoint: the data scientist invokes the endpoint (SageMaker Runtime)", problems)
    ck.check("endpoint: the producer is denied InvokeEndpoint", refused(
        "AccessDeniedException", invoke,
        c=kclient(url, keys["producer"], service="sagemaker-runtime"),
        contains=("sagemaker:InvokeEndpoint",
                  f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/m")))
    ck.check("endpoint: an unsigned invocation is refused", refused(
        "MissingAuthenticationTokenException", invoke,
        c=kclient(url, unsigned=True, service="sagemaker-runtime")))
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url + "/ping", timeout=10) as r:
        ck.check("endpoint: /ping answers without a signature",
                 [] if r.status == 200 else [f"status {r.status}"])


def flow_log_mode(ck, procs, binary, tmp, ids, keys, env):
    data_dir = os.path.join(tmp, "log-mode")
    cfg = os.path.join(tmp, "log.toml")
    write_config(cfg, "log", ids)
    log = os.path.join(tmp, "up-log.log")
    p, url = start_up(procs, binary, data_dir, log, env, config=cfg)
    try:
        ds = kclient(url, keys["data-scientist"])
        problems = allowed(ds.put_record, StreamName="churn", Data=b"x", PartitionKey="a")
        problems += allowed(kclient(url, unsigned=True).list_streams)
        ck.check("log mode: a denied PutRecord and an unsigned request are let through",
                 problems)
    finally:
        ck.check("up (log mode) stops cleanly", stop_up(procs, p, log))
    path = os.path.join(data_dir, "state", "audit", "audit.log")
    lines = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    would = [e for e in lines if e["outcome"] == "would-deny"]
    ck.check("log mode: both are audited as would-deny",
             [] if any(e["action"] == "kinesis:PutRecord" for e in would)
             and any(e["principal"] == "anonymous" for e in would)
             else [json.dumps(lines)[:2000]])


HTTPS_ONLY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "kinesis:ListStreams", "Resource": "*"},
    {"Effect": "Deny", "Action": "*", "Resource": "*",
     "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}


def flow_https_only_over_http(ck, url, key):
    ck.check("aws:SecureTransport: the HTTPS-only principal is denied over HTTP", refused(
        "AccessDeniedException", kclient(url, key).list_streams, contains=("explicit deny",)))


def flow_tls(ck, procs, binary, tmp, ids, keys, env, aws_cli):
    data_dir = os.path.join(tmp, "tls")
    cfg = os.path.join(tmp, "tls.toml")
    write_config(cfg, "enforce", ids, tls=True)
    log = os.path.join(tmp, "up-tls.log")
    p, url = start_up(procs, binary, data_dir, log, env, config=cfg)
    cert = os.path.join(data_dir, "state", "tls", "cert.pem")
    try:
        text = open(log, encoding="utf-8", errors="replace").read()
        ck.check("TLS: up serves https and prints the certificate's fingerprint",
                 [] if url.startswith("https://") and "SHA-256" in text and os.path.exists(cert)
                 else [url] + log_tail(log))
        cli_env = dict(env, AWS_ACCESS_KEY_ID=keys["admin"]["AccessKeyId"],
                       AWS_SECRET_ACCESS_KEY=keys["admin"]["SecretAccessKey"],
                       AWS_CONFIG_FILE=os.path.join(tmp, "no-config"),
                       AWS_SHARED_CREDENTIALS_FILE=os.path.join(tmp, "no-credentials"))
        base = [aws_cli, "--endpoint-url", url, "--region", REGION, "--output", "json"]
        ok = subprocess.run(base + ["--ca-bundle", cert, "kinesis", "list-streams"],
                            capture_output=True, text=True, env=cli_env, timeout=120,
                            check=False)
        bad = subprocess.run(base + ["kinesis", "list-streams"], capture_output=True, text=True,
                             env=cli_env, timeout=120, check=False)
        ck.check("TLS: the AWS CLI with --ca-bundle lists streams; without it, refuses the "
                 "certificate",
                 [] if ok.returncode == 0 and "churn" in ok.stdout and bad.returncode != 0
                 and "SSL" in bad.stderr
                 else [f"with: rc {ok.returncode} {ok.stderr[-1500:]}",
                       f"without: rc {bad.returncode} {bad.stderr[-500:]}"])
        c = boto3.session.Session().client(
            "kinesis", endpoint_url=url, region_name=REGION, verify=cert,
            aws_access_key_id=keys["https-only"]["AccessKeyId"],
            aws_secret_access_key=keys["https-only"]["SecretAccessKey"],
            config=Config(retries={"max_attempts": 2, "mode": "standard"}))
        ck.check("TLS: boto3 with verify=cert.pem; the HTTPS-only principal is let in",
                 allowed(c.list_streams))
        st = subprocess.run([binary, "status", "--admin-url", admin_url(log), "--ca-bundle", cert],
                            capture_output=True, text=True, env=cli_env, timeout=60, check=False)
        ck.check("TLS: millrace status --ca-bundle reads the https admin API, signed",
                 [] if st.returncode == 0 and "churn" in st.stdout
                 else [f"rc {st.returncode}: {st.stderr[-1500:]}"])
    finally:
        ck.check("up (TLS) stops cleanly", stop_up(procs, p, log))


def flow_exposure(ck, binary, tmp, env):
    argv = [binary, "--data-dir", os.path.join(tmp, "exposed"), "up",
            "--kinesis-addr", "0.0.0.0:0", "--admin-addr", "127.0.0.1:0"]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=30,
                             check=False)
        problems = [] if out.returncode != 0 and "--insecure" in out.stderr \
            else [f"rc {out.returncode}: {out.stderr[-2000:]}"]
    except subprocess.TimeoutExpired:
        problems = ["up kept running on 0.0.0.0 with auth off"]
    ck.check("up refuses 0.0.0.0 with auth off unless --insecure", problems)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--millrace", required=True)
    ap.add_argument("--examples", required=True)
    ap.add_argument("--aws-cli", required=True)
    ap.add_argument("--keep-tmp", action="store_true")
    args = ap.parse_args(argv)
    args.millrace = os.path.abspath(args.millrace)
    ck = Checks("auth flows")
    procs = Procs()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    env = child_env()
    os.environ.clear()
    os.environ.update(env)
    tmp = tempfile.mkdtemp(prefix="millrace-auth-flows-")
    try:
        ids, keys = flow_identities(ck, args.millrace, tmp, args.examples)
        https_only = os.path.join(tmp, "https-only.json")
        with open(https_only, "w", encoding="utf-8") as f:
            json.dump(HTTPS_ONLY, f)
        keys["https-only"] = identity(args.millrace, ids, "https-only", https_only)
        cfg = os.path.join(tmp, "millrace.toml")
        data_dir = os.path.join(tmp, "enforce")
        train_tiny(args.millrace, data_dir, tmp)
        ep_port = free_port()
        write_config(cfg, "enforce", ids, endpoint_port=ep_port)
        log = os.path.join(tmp, "up.log")
        p, url = start_up(procs, args.millrace, data_dir, log, env, config=cfg)
        ep_url = f"http://127.0.0.1:{ep_port}"
        for name, flow in [
                ("signatures", lambda: flow_signatures(ck, url, keys)),
                ("roles", lambda: flow_roles(ck, url, keys)),
                ("resource policies", lambda: flow_resource_policies(ck, url, keys)),
                ("fan-out", lambda: flow_fanout(ck, url, keys)),
                ("aws cli", lambda: flow_cli(ck, url, keys, args.aws_cli, tmp)),
                ("live add", lambda: flow_live_add(ck, args.millrace, url, ids, tmp)),
                ("endpoint", lambda: flow_endpoint(ck, ep_url, keys)),
                ("admin", lambda: flow_admin(ck, args.millrace, admin_url(log), keys, env)),
                ("secure transport", lambda: flow_https_only_over_http(
                    ck, url, keys["https-only"]))]:
            try:
                flow()
            except (ClientError, BotoCoreError, RuntimeError, OSError, ValueError) as exc:
                ck.check(f"{name}: ran to the end", [err_text(exc)] + log_tail(log))
        ck.check("up (enforce) stops cleanly", stop_up(procs, p, log))
        flow_audit(ck, data_dir)
        try:
            flow_log_mode(ck, procs, args.millrace, tmp, ids, keys, env)
        except (ClientError, BotoCoreError, RuntimeError, OSError, ValueError) as exc:
            ck.check("log mode: ran to the end", [err_text(exc)])
        try:
            flow_tls(ck, procs, args.millrace, tmp, ids, keys, env, args.aws_cli)
        except (ClientError, BotoCoreError, RuntimeError, OSError, ValueError) as exc:
            ck.check("TLS: ran to the end", [err_text(exc)])
        except StartError as exc:
            ck.check("up (TLS) starts", exc.problems)
        flow_exposure(ck, args.millrace, tmp, env)
    except StartError as exc:
        ck.check("millrace up starts", exc.problems)
    except (RuntimeError, OSError, ValueError) as exc:
        ck.check("identities: ran to the end", [err_text(exc)])
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
