"""Helpers shared by the compat flows (delivery_flows.py, prep_flows.py, fanout_boto3.py,
boto3_ops.py): check reporting in
the `ok - ` / `FAIL - ` format .ci/run reads, free loopback ports, waiting for a server."""

import socket
import sys
import time
import urllib.error
import urllib.request

from botocore.exceptions import ClientError


class Checks:
    """Counts pass/fail lines; `prefix` names the flow set in the summary line."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.passed = 0
        self.failed = 0

    def check(self, name, problems):
        """problems: list of strings; empty means pass."""
        if problems:
            self.failed += 1
            print(f"FAIL - {name}")
            for p in problems[:10]:
                for line in str(p).splitlines() or [""]:
                    print(f"    {line}")
            if len(problems) > 10:
                print(f"    ... and {len(problems) - 10} more")
        else:
            self.passed += 1
            print(f"ok - {name}")
        sys.stdout.flush()
        return not problems

    def expect(self, ok, name):
        """A check with one condition: `ok` true passes."""
        return self.check(name, [] if ok else ["not as expected"])

    def summary(self):
        return f"{self.prefix}: {self.passed} passed, {self.failed} failed"


def note(msg):
    print(f"# {msg}")
    sys.stdout.flush()


def err_text(exc):
    if isinstance(exc, ClientError):
        e = exc.response.get("Error", {})
        return f"{e.get('Code')}: {e.get('Message')}"
    return f"{type(exc).__name__}: {exc}"


def error_code(exc):
    """The AWS error code of a botocore ClientError ('' when it has none)."""
    return exc.response.get("Error", {}).get("Code", "")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with opener.open(url, timeout=2) as r:
                r.read()
                return None
        except urllib.error.HTTPError:
            return None  # it answered
        except (urllib.error.URLError, OSError) as exc:
            last = exc
            time.sleep(0.2)
    return f"{url} did not answer within {timeout:.0f}s ({last})"
