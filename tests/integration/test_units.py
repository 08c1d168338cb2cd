"""The systemd units (systemd/): their syntax and sandboxing settings (and
`systemd-analyze verify`), and whether sctpt, run as the units run it, stays
inside their system-call filter and address families: a server and a client
under strace move data, the server is reloaded and both are stopped; every
system call and socket family they used must be one the unit allows.  (The
test machine has no booted systemd to start the units for real.)"""

import os
import re
import signal
import subprocess
from pathlib import Path

import lib
from lib import BIN, LOOP, ROOT

UNITS = ("sctpt-server@.service", "sctpt-client@.service")
UNIT_SECTIONS = {"Unit", "Service", "Install"}


@lib.timeout(60)
def test_systemd_units(env):
    """The units parse (systemd-analyze verify when it can run here, else a syntax
    check) and keep the sandboxing docs/packaging.md promises."""
    must = {
        "DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
        "ProtectHome": "yes", "PrivateTmp": "yes", "SystemCallFilter": "@system-service",
    }
    for name in UNITS:
        text = (ROOT / "systemd" / name).read_text()
        keys, section = {}, None
        for n, line in enumerate(text.splitlines(), 1):
            s = line.strip()
            if not s or s.startswith(("#", ";")):
                continue
            if s.startswith("["):
                lib.check(s.endswith("]") and s[1:-1] in UNIT_SECTIONS,
                          f"{name}:{n}: unknown section {s}")
                section = s[1:-1]
                continue
            lib.check(section is not None and re.match(r"^[A-Za-z]+=", s),
                      f"{name}:{n}: not a Key=value line in a section: {s}")
            k, v = s.split("=", 1)
            keys.setdefault(k, []).append(v)
        for k, v in must.items():
            lib.check(v in keys.get(k, []), f"{name}: wants {k}={v}")
        lib.check("ExecReload" in keys and "-HUP" in keys["ExecReload"][0],
                  f"{name}: ExecReload=kill -HUP missing")
        lib.check(keys.get("RestrictAddressFamilies"), f"{name}: RestrictAddressFamilies")
        lib.check("CapabilityBoundingSet" in keys, f"{name}: CapabilityBoundingSet")
        caps = " ".join(keys["CapabilityBoundingSet"]).split()
        lib.check(set(caps) <= {"CAP_NET_BIND_SERVICE"}, f"{name}: capabilities {caps}")
        if "server" in name:
            lib.check("sctpt" in keys.get("StateDirectory", []), f"{name}: StateDirectory")
        # systemd-analyze verify wants the binaries at the paths the unit names.
        unit = Path(env.dir) / name
        exe = os.path.abspath(BIN)
        unit.write_text(text.replace("@BINDIR@/sctpt", exe))
        try:
            r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                               capture_output=True, text=True, timeout=30)
        except FileNotFoundError:
            lib.info("systemd-analyze not installed: syntax check only")
            continue
        out = (r.stdout + r.stderr).strip()
        # Outside a booted systemd (a container) verify cannot load units at all;
        # then the syntax check above is what we have.
        if r.returncode != 0 and re.search(r"Failed to (initialize manager|"
                                           r"connect|setup|set up)|System has not been "
                                           r"booted|Permission denied|mount", out):
            lib.info(f"systemd-analyze verify cannot run here ({out.splitlines()[0][:120]})")
            continue
        bad = [l for l in out.splitlines() if name.split("@")[0] in l or "Unknown" in l
               or "unknown" in l]
        lib.check(r.returncode == 0 and not bad, f"systemd-analyze verify {name}: {out[:600]}")


def unit_keys(name):
    keys = {}
    for line in (ROOT / "systemd" / name).read_text().splitlines():
        s = line.strip()
        if s and not s.startswith(("#", ";", "[")) and "=" in s:
            k, v = s.split("=", 1)
            keys.setdefault(k, []).append(v)
    return keys


def syscall_groups():
    """{"@group": [members]} from systemd-analyze (this systemd's own lists)."""
    try:
        r = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager"],
                           capture_output=True, text=True, timeout=20)
    except FileNotFoundError:
        raise lib.TestFailure("systemd-analyze is not installed (package systemd; "
                              "scripts/setup.sh installs it)")
    lib.check(r.returncode == 0, f"systemd-analyze syscall-filter: {r.stderr[:200]}")
    groups, cur = {}, None
    for line in r.stdout.splitlines():
        if line.startswith("@"):
            cur = line.split()[0]
            groups[cur] = []
        elif cur and line.strip() and not line.strip().startswith("#"):
            groups[cur].append(line.strip().split()[0])
    return groups


def expand(names, groups, seen=None):
    seen = set() if seen is None else seen
    out = set()
    for n in names:
        if n.startswith("@"):
            if n in seen:
                continue
            seen.add(n)
            out |= expand(groups.get(n, []), groups, seen)
        else:
            out.add(n)
    return out


def allowed_syscalls(keys, groups):
    """The effective filter of a unit's SystemCallFilter= lines (allow list first,
    then ~ lines remove; @default is always allowed)."""
    allow, deny = set(), set()
    for v in keys.get("SystemCallFilter", []):
        if v.startswith("~"):
            deny |= expand(v[1:].split(), groups)
        else:
            allow |= expand(v.split(), groups)
    return (allow | expand(["@default"], groups)) - deny


def traced(env, name, argv):
    out = os.path.join(env.dir, f"{name}.strace")
    p = env.spawn(name, ["strace", "-f", "-qq", "-o", out, "--"] + argv)
    p.strace_out = out
    return p


def tracee(p):
    """The pid of the program strace started (signals go to it, not to strace)."""
    def child():
        try:
            kids = Path(f"/proc/{p.popen.pid}/task/{p.popen.pid}/children").read_text().split()
        except OSError:
            return None
        return int(kids[0]) if kids else None
    lib.wait_until(lambda: child() is not None, 10, f"{p.name} under strace")
    return child()


OPEN_RE = re.compile(r'^\d+\s+(?:open|openat|openat2|creat)\((?:AT_FDCWD, )?"([^"]*)", ([A-Z_|]+)')
PROC_OK = re.compile(r"^/proc/(self|thread-self|\d+)(/|$)")


def files(path):
    """(paths opened for writing, /proc paths opened) from an strace log."""
    writes, proc = set(), set()
    for line in Path(path).read_text(errors="replace").splitlines():
        m = OPEN_RE.match(line)
        if not m:
            continue
        if re.search(r"O_WRONLY|O_RDWR|O_CREAT", m.group(2)):
            writes.add(m.group(1))
        if m.group(1).startswith("/proc/"):
            proc.add(m.group(1))
    return writes, proc


CALL_RE = re.compile(r"^\d+\s+(?:<\.\.\. )?([a-z_0-9]+)[( ]")
FAMILY_RE = re.compile(r"^\d+\s+socket\((AF_[A-Z0-9]+)")


def used(path):
    calls, families = set(), set()
    for line in Path(path).read_text(errors="replace").splitlines():
        m = CALL_RE.match(line)
        if m and m.group(1) not in ("exited", "killed", "resumed"):
            calls.add(m.group(1))
        m = FAMILY_RE.match(line)
        if m:
            families.add(m.group(1))
    return calls, families


@lib.timeout(90)
def test_units_sandbox_syscalls(env):
    """The native SCTP engine (the default)."""
    sandbox_run(env, [])


@lib.timeout(90)
def test_units_sandbox_syscalls_usrsctp(env):
    """usrsctp on both ends: it also opens netlink and Unix sockets (interface list)."""
    sandbox_run(env, ["--sctp-engine", "usrsctp"])


def sandbox_run(env, extra):
    if subprocess.run(["which", "strace"], capture_output=True).returncode != 0:
        raise lib.TestFailure("strace is not installed (scripts/setup.sh installs it)")
    ldd = subprocess.run(["ldd", BIN], capture_output=True, text=True).stdout
    if "libasan" in ldd or "libubsan" in ldd:
        lib.info("sanitizer build: its runtime makes calls sctpt does not; checked on release")
        return
    groups = syscall_groups()
    lib.check(len(groups) > 10, "no syscall groups from systemd-analyze")
    # keygen as ExecStartPre runs it, then server and client as ExecStart does.
    keyp = os.path.join(env.dir, "unit.key")
    kg = traced(env, "keygen", [BIN, "keygen", "--key", keyp])
    lib.check(kg.wait_exit(20) == 0, f"keygen failed: {kg.tail(5)}")
    cert = re.search(r"cert=(\S+)", kg.log_text()).group(1)
    port = lib.free_port(udp=True)
    conf = os.path.join(env.dir, "bridge.json")
    with open(conf, "w") as f:
        f.write('{"listen": ["udp://%s:%d", "tcp://%s:%d"], "proxy": true, '
                '"allow": ["127.0.0.0/8"]}\n' % (LOOP, port, LOOP, lib.free_port()))
    s = traced(env, "server", [BIN, "server", "-c", conf, "--key", keyp] + extra)
    lib.check(s.wait_log("listening on udp://", 20), f"server: {s.tail(10)}")
    socks = lib.free_port()
    c = traced(env, "client", [BIN, "client", "--server", f"udp://{LOOP}:{port}", "--cert",
                               cert, "--socks", f"{LOOP}:{socks}"] + extra)
    lib.check(c.wait_log("association up", 30), f"client: {c.tail(10)}")
    ex = env.exchange_server()
    lib.exchange(socks, ex.addr, 256 << 10, 256 << 10, 1, 60)
    spid, cpid = tracee(s), tracee(c)
    os.kill(spid, signal.SIGHUP)
    lib.check(s.wait_log("reload: egress rules unchanged", 10), f"reload: {s.tail(5)}")
    os.kill(cpid, signal.SIGTERM)
    os.kill(spid, signal.SIGTERM)
    lib.check(c.wait_exit(20) == 0 and s.wait_exit(20) == 0,
              f"exit: client {c.popen.returncode}, server {s.popen.returncode}")
    problems = []
    for unit, procs in (("sctpt-server@.service", (kg, s)), ("sctpt-client@.service", (c,))):
        keys = unit_keys(unit)
        allowed = allowed_syscalls(keys, groups)
        fams = set(" ".join(keys.get("RestrictAddressFamilies", [])).split())
        for p in procs:
            calls, families = used(p.strace_out)
            lib.check(len(calls) > 20, f"{p.name}: strace saw only {sorted(calls)}")
            for sc in sorted(calls - allowed - {"execve"}):
                problems.append(f"{p.name} called {sc}, which {unit}'s SystemCallFilter denies")
            for fam in sorted(families - fams):
                problems.append(f"{p.name} opened an {fam} socket, which {unit}'s "
                                f"RestrictAddressFamilies denies")
            writes, proc = files(p.strace_out)
            # ProtectSystem=strict: only the state directory (here the test's
            # directory, which holds the key) is writable.
            for w in sorted(writes):
                if not (os.path.abspath(w).startswith(env.dir + "/") or w == "/dev/null"):
                    problems.append(f"{p.name} opened {w} for writing: read-only in {unit}")
            # ProtectProc=invisible, ProcSubset=pid: only the process's own /proc.
            for f in sorted(proc):
                if not PROC_OK.match(f):
                    problems.append(f"{p.name} opened {f}: hidden by ProcSubset=pid in {unit}")
            lib.info(f"{p.name}: {len(calls)} distinct system calls, families "
                     f"{sorted(families)}: all allowed by {unit}")
    lib.check(not problems, "; ".join(problems))
