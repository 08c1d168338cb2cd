"""The man pages (man/) against the binaries' --help, both ways.

--help side: the long options on the option lines of `sctpt COMMAND --help`
(an indented line whose first column starts with "-" or "LINK, -": every
--name in that column).  Man side: the --name in the tag line of each .TP
entry of the command's sections.  A missing option in either place fails
with exactly which options and which file/section to add them to.
"""

import os
import re
import subprocess
from pathlib import Path

import lib
from lib import BIN, ROOT

LAB_BIN = os.environ.get("SCTPT_LAB_BIN") or os.path.join(os.path.dirname(BIN), "sctpt-lab")
MAN = ROOT / "man"

# Which man sections (.SH titles) document which command's options.
SCTPT_SECTIONS = {
    "client": ("CLIENT OPTIONS", "METRICS OPTIONS", "TUNNEL OPTIONS"),
    "server": ("SERVER OPTIONS", "METRICS OPTIONS", "TUNNEL OPTIONS"),
    "keygen": ("KEYGEN OPTIONS",),
    "managed": ("TOR MANAGED MODE", "TUNNEL OPTIONS"),
    "chain": ("CHAIN OPTIONS",),
}
LAB_SECTIONS = {"impair": ("IMPAIR OPTIONS",)}

OPT_RE = re.compile(r"(?<![\w-])--[a-z0-9][a-z0-9-]*[a-z0-9]")


def help_text(argv, env=None):
    e = dict(os.environ)
    e.pop("TOR_PT_MANAGED_TRANSPORT_VER", None)
    e.update(env or {})
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=10, env=e)
    lib.check(r.returncode == 0, f"{' '.join(argv)} exited {r.returncode}: {r.stderr[:300]}")
    return r.stdout


def help_options(text):
    """Long options named in the first column of the option lines."""
    opts = set()
    for line in text.splitlines():
        m = re.match(r"^ {1,4}(\S.*)$", line)
        if not m:
            continue
        term = re.split(r"\s{2,}", m.group(1))[0]
        if not (term.startswith("-") or re.match(r"^[A-Z]+, -", term)):
            continue
        opts.update(OPT_RE.findall(term))
    return opts


def help_commands(text):
    """The names in the 'Commands:' / 'Tools:' block of a top-level help."""
    names, inside = set(), False
    for line in text.splitlines():
        if line.rstrip() in ("Commands:", "Tools:"):
            inside = True
            continue
        if inside:
            m = re.match(r"^  ([a-z][a-z-]*)\s", line + " ")
            if m:
                names.add(m.group(1))
            elif line.strip() == "":
                break
    return names


def roff_plain(s):
    s = re.sub(r"\\f[BIRP]|\\f\(..|\\f\[[A-Z]*\]", "", s)
    s = s.replace("\\-", "-").replace("\\e", "\\").replace("\\&", "")
    s = re.sub(r'^\.(B|I|BR|RB|BI|IB|IR|RI)\s+', "", s)
    return s.replace('"', "")


def man_sections(path):
    """{.SH title: [tag line of each .TP entry]} of a man page."""
    secs, cur, tp = {}, None, False
    for line in path.read_text().splitlines():
        if line.startswith(".SH "):
            cur = line[4:].strip().strip('"')
            secs.setdefault(cur, [])
            tp = False
        elif line.startswith(".TP"):
            tp = True
        elif tp and not line.startswith(".\\\""):
            if cur is not None:
                secs[cur].append(roff_plain(line))
            tp = False
    return secs


def man_options(secs, titles):
    opts = set()
    for t in titles:
        for tag in secs.get(t, []):
            opts.update(OPT_RE.findall(tag))
    return opts


def compare(what, help_cmd, help_opts, man_file, titles, man_opts, problems):
    where = f"{man_file} ({', '.join(repr(t) for t in titles)})"
    for o in sorted(help_opts - man_opts):
        problems.append(f"{help_cmd} lists {o}, but {where} has no .TP entry for it")
    for o in sorted(man_opts - help_opts):
        problems.append(f"{where} documents {o} ({what}), but {help_cmd} does not list it")


def report(problems):
    if problems:
        raise lib.TestFailure(f"{len(problems)} difference(s) between --help and man pages: "
                              + "; ".join(problems))


@lib.timeout(30)
def test_manpage_sctpt_options(env):
    """sctpt(1) documents every command and option --help lists, and nothing else."""
    secs = man_sections(MAN / "sctpt.1")
    problems = []
    top = help_text([BIN, "--help"])
    cmds = help_commands(top)
    lib.check(len(cmds) >= 4, f"no command list found in 'sctpt --help': {top[:200]}")
    man_cmds = {roff_plain(t).split()[0] for t in secs.get("COMMANDS", []) if t.strip()}
    for c in sorted(cmds - man_cmds):
        problems.append(f"'sctpt --help' lists command {c}, but man/sctpt.1 (COMMANDS) "
                        f"has no .TP entry for it")
    for c in sorted(man_cmds - cmds):
        problems.append(f"man/sctpt.1 (COMMANDS) documents command {c}, but 'sctpt --help' "
                        f"does not list it")
    for cmd, titles in SCTPT_SECTIONS.items():
        if cmd == "managed":
            argv, env_add, label = [BIN, "--help"], {"TOR_PT_MANAGED_TRANSPORT_VER": "1"}, \
                "'TOR_PT_MANAGED_TRANSPORT_VER=1 sctpt --help'"
        else:
            argv, env_add, label = [BIN, cmd, "--help"], None, f"'sctpt {cmd} --help'"
        hopts = help_options(help_text(argv, env_add))
        lib.check(len(hopts) >= 2, f"{label}: found no option lines")
        compare(cmd, label, hopts, "man/sctpt.1", titles, man_options(secs, titles), problems)
    report(problems)


@lib.timeout(30)
def test_manpage_lab_options(env):
    """sctpt-lab(1) against `sctpt-lab --help` and each tool's --help."""
    lib.check(os.access(LAB_BIN, os.X_OK), f"sctpt-lab not found: {LAB_BIN}")
    secs = man_sections(MAN / "sctpt-lab.1")
    problems = []
    tools = help_commands(help_text([LAB_BIN, "--help"]))
    man_tools = {roff_plain(t).split()[0] for t in secs.get("TOOLS", []) if t.strip()}
    for c in sorted(tools - man_tools):
        problems.append(f"'sctpt-lab --help' lists tool {c}, but man/sctpt-lab.1 (TOOLS) "
                        f"has no .TP entry for it")
    for c in sorted(man_tools - tools):
        problems.append(f"man/sctpt-lab.1 (TOOLS) documents tool {c}, but 'sctpt-lab --help' "
                        f"does not list it")
    for tool in sorted(tools - {"version", "help"}):
        titles = LAB_SECTIONS.get(tool, (f"{tool.upper()} OPTIONS",))
        label = f"'sctpt-lab {tool} --help'"
        hopts = help_options(help_text([LAB_BIN, tool, "--help"]))
        compare(tool, label, hopts, "man/sctpt-lab.1", titles, man_options(secs, titles),
                problems)
    report(problems)


@lib.timeout(30)
def test_manpage_render(env):
    """The three pages render without a warning from man/groff."""
    problems = []
    for page in ("sctpt.1", "sctpt-lab.1", "sctpt.json.5"):
        # -ww: all warnings; output is discarded, only complaints count.
        r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(MAN / page)],
                           capture_output=True, text=True, timeout=20)
        if r.returncode != 0 or r.stderr.strip():
            problems.append(f"{page}: groff exit {r.returncode}: {r.stderr.strip()[:300]}")
    lib.check(not problems, "; ".join(problems))
