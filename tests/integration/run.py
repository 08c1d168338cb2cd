#!/usr/bin/env python3
"""Run the sctpt integration tests.

  python3 tests/integration/run.py                 # all tests
  python3 tests/integration/run.py NAME...         # tests (or test_*.py modules) by name
  python3 tests/integration/run.py -k SUBSTRING    # tests whose name contains SUBSTRING
  python3 tests/integration/run.py -l              # list tests
  python3 tests/integration/run.py --skip 1gib     # all but tests whose name contains 1gib

Environment: SCTPT_BIN (default build/sctpt under the repo root), SCTPT_VERBOSE=1 (pass -v).
Each test runs in its own Python process (own process group) with a time limit; its sctpt
processes die with it.  Output: one line per test, then "N passed, N failed".
"""

import argparse
import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
DEFAULT_TIMEOUT = 120


def discover():
    tests = []
    for f in sorted(HERE.glob("test_*.py")):
        mod = importlib.import_module(f.stem)
        for name, obj in vars(mod).items():
            if name.startswith("test_") and callable(obj) and obj.__module__ == mod.__name__:
                tests.append((f.stem, name, getattr(obj, "timeout", DEFAULT_TIMEOUT)))
    names = [t[1] for t in tests]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        sys.exit(f"duplicate test names: {sorted(dup)}")
    return tests


def child(modname, testname, result_path):
    """Run one test in this process; write {"ok", "reason"} to result_path."""
    import lib
    mod = importlib.import_module(modname)
    fn = getattr(mod, testname)
    limit = getattr(fn, "timeout", DEFAULT_TIMEOUT)

    def on_alarm(signum, frame):
        raise lib.TestTimeout(f"test timed out after {limit}s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(limit)
    result = {"ok": False, "reason": "did not run"}
    env = None
    try:
        env = lib.Env(testname)
        fn(env)
        env.health_check()
        result = {"ok": True, "reason": ""}
    except BaseException as e:
        signal.alarm(0)
        reason = f"{type(e).__name__}: {e}" if not isinstance(e, lib.TestFailure) else str(e)
        result = {"ok": False, "reason": " ".join(reason.split())[:400]}
        traceback.print_exc(file=sys.stdout)
        if env:
            env.print_logs(40)
    finally:
        signal.alarm(0)
        if env:
            env.close(failed=not result["ok"])
        with open(result_path, "w") as f:
            json.dump(result, f)
        sys.stdout.flush()


def run_one(modname, testname, limit):
    with tempfile.TemporaryDirectory(prefix="sctpt-run-") as d:
        out_path, res_path = os.path.join(d, "out"), os.path.join(d, "result.json")
        t0 = time.monotonic()
        with open(out_path, "w") as out:
            p = subprocess.Popen([sys.executable, __file__, "--child", modname, testname, res_path],
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True, cwd=str(HERE.parents[1]))
            try:
                p.wait(timeout=limit + 30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)
        elapsed = time.monotonic() - t0
        output = Path(out_path).read_text(errors="replace")
        try:
            res = json.loads(Path(res_path).read_text())
        except (OSError, ValueError):
            res = {"ok": False, "reason": f"test process died (status {p.returncode}) "
                                          f"or was killed after {limit + 30}s"}
    return res, elapsed, output


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "--child":
        child(*sys.argv[2:5])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("names", nargs="*")
    ap.add_argument("-k", dest="substr")
    ap.add_argument("-l", "--list", action="store_true")
    ap.add_argument("--skip", action="append", default=[],
                    help="skip tests whose name contains this (repeatable)")
    args = ap.parse_args()
    tests = discover()
    if args.names or args.substr:
        tests = [t for t in tests if t[1] in args.names or t[0] in args.names
                 or (args.substr and args.substr in t[1])]
    if args.skip:
        tests = [t for t in tests if not any(k in t[1] for k in args.skip)]
    if args.list:
        for m, n, lim in tests:
            print(f"{n}  ({m}.py, {lim}s)")
        return
    passed = failed = 0
    for modname, name, limit in tests:
        res, elapsed, output = run_one(modname, name, limit)
        if res["ok"]:
            passed += 1
            print(f"PASS {name} ({elapsed:.1f}s)", flush=True)
            for line in output.splitlines():
                if line.startswith("INFO: "):
                    print("    " + line[6:], flush=True)
        else:
            failed += 1
            print(f"FAIL {name}: {res['reason']}", flush=True)
            lines = output.splitlines()
            for line in lines[-200:]:
                print("    " + line, flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed or not tests else 0)


if __name__ == "__main__":
    main()
