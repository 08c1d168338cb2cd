#!/usr/bin/env python3
"""Tests of tools/check_layers.py on small trees built in a temporary folder.

Each test starts from a clean tree shaped like the real one (util below
crypto below carrier below wire, a nested lab/impair), breaks one rule and
checks that the checker names the right file and line.
"""

import contextlib
import io
import os
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, os.pardir, "tools"))

import check_layers  # noqa: E402

CLEAN = {
    "util/.may_include": "# nothing below util\n",
    "util/log.h": "#include <stdio.h>\nvoid log_msg(const char *m);\n",
    "util/log.c": '#include "util/log.h"\n',
    "crypto/.may_include": "util\n",
    "crypto/crypto.h": '#include "util/log.h"\n',
    "crypto/crypto.c": '#include "crypto/crypto.h"\n#include "crypto/aead_internal.h"\n',
    "crypto/aead_internal.h": "int aead_x(void);\n",
    "carrier/.may_include": "util\ncrypto  # masks\n",
    "carrier/carrier.h": '#include "util/log.h"\n',
    "carrier/udp.c": ('#include "carrier/carrier.h"\n'
                      '#include "crypto/crypto.h"\n'
                      "\n"
                      "static int x;\n"),
    "wire/.may_include": "util\ncrypto\ncarrier\n",
    "wire/wire.h": '#include "carrier/carrier.h"\n',
    "wire/wire.c": '#include "wire/wire.h"\n#include "crypto/crypto.h"\n',
    "lab/impair/.may_include": "util\n",
    "lab/impair/impair.h": '#include "util/log.h"\n',
    "lab/impair/engine.c": '#include "lab/impair/impair.h"\n#include "engine.h"\n',
    "lab/impair/engine.h": "int engine(void);\n",
    "lab/.may_include": "util\nlab/impair\n",
    "lab/main.c": '#include "lab/impair/impair.h"\n#include "util/log.h"\n',
}


class CheckLayersTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="check_layers.")
        self.src = os.path.join(self.tmp, "src")
        for rel, text in CLEAN.items():
            self.write(rel, text)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def path(self, rel):
        return os.path.join(self.src, rel)

    def write(self, rel, text):
        os.makedirs(os.path.dirname(self.path(rel)), exist_ok=True)
        with open(self.path(rel), "w") as f:
            f.write(text)

    def append(self, rel, text):
        with open(self.path(rel), "a") as f:
            f.write(text)

    def lines(self, rel):
        with open(self.path(rel)) as f:
            return len(f.readlines())

    def problems(self):
        return [(p, n) for p, n, _ in check_layers.check(self.src)]

    def run_main(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(io.StringIO()):
            rc = check_layers.main(["--src", self.src])
        return rc, out.getvalue()

    def assertOnly(self, rel, lineno):
        got = check_layers.check(self.src)
        self.assertEqual([(p, n) for p, n, _ in got], [(self.path(rel), lineno)],
                         "problems: %r" % got)
        return got[0][2]

    def test_clean_tree_passes(self):
        self.assertEqual(check_layers.check(self.src), [])
        rc, out = self.run_main()
        self.assertEqual(rc, 0)
        self.assertIn("include rules hold", out)

    def test_upward_include_fails(self):
        # carrier is below wire: including wire from carrier breaks the rule.
        self.append("carrier/udp.c", '#include "wire/wire.h"\n')
        msg = self.assertOnly("carrier/udp.c", 5)
        self.assertIn("carrier/ may not include from wire/", msg)
        rc, out = self.run_main()
        self.assertEqual(rc, 1)
        self.assertIn("udp.c:5: carrier/ may not include from wire/", out)

    def test_include_with_spaces_is_seen(self):
        self.append("util/log.c", '  #  include "crypto/crypto.h"\n')
        self.assertOnly("util/log.c", 2)

    def test_internal_header_from_another_folder_fails(self):
        # wire may include crypto, but not crypto's private header.
        self.append("wire/wire.c", '#include "crypto/aead_internal.h"\n')
        msg = self.assertOnly("wire/wire.c", 3)
        self.assertIn("private to crypto/", msg)

    def test_internal_header_from_own_folder_passes(self):
        self.assertEqual(self.problems(), [])   # crypto.c includes it

    def test_missing_may_include_fails(self):
        os.remove(self.path("wire/.may_include"))
        msg = self.assertOnly("wire/wire.c", 1)
        self.assertIn("no .may_include", msg)

    def test_relative_include_fails(self):
        self.append("wire/wire.c", '#include "../util/log.h"\n')
        msg = self.assertOnly("wire/wire.c", 3)
        self.assertIn("relative include", msg)

    def test_missing_folder_fails(self):
        self.append("wire/wire.c", '#include "nosuch/x.h"\n')
        msg = self.assertOnly("wire/wire.c", 3)
        self.assertIn("does not exist", msg)

    def test_rules_naming_missing_folder_fail(self):
        self.append("wire/.may_include", "cryptoo\n")
        msg = self.assertOnly("wire/.may_include", 4)
        self.assertIn('"cryptoo"', msg)

    def test_bare_include_of_missing_file_fails(self):
        self.append("lab/impair/engine.c", '#include "log.h"\n')
        self.assertOnly("lab/impair/engine.c", 3)

    def test_nested_folder_needs_its_own_listing(self):
        # lab lists lab/impair; lab/impair may not reach back up into lab.
        self.write("lab/lab.h", "int lab(void);\n")
        self.append("lab/impair/engine.c", '#include "lab/lab.h"\n')
        msg = self.assertOnly("lab/impair/engine.c", 3)
        self.assertIn("lab/impair/ may not include from lab/", msg)

    def test_comments_in_rules(self):
        self.write("wire/.may_include", "# comment only\nutil # trailing\n")
        got = self.problems()
        # wire.h includes carrier, wire.c includes crypto: both now refused.
        self.assertEqual(sorted(got), [(self.path("wire/wire.c"), 2),
                                       (self.path("wire/wire.h"), 1)])

    def test_graph(self):
        text = check_layers.graph(self.src)
        lines = text.splitlines()
        self.assertEqual(lines[0].split(), ["util", "may", "include:", "(nothing)"])
        self.assertIn("wire        may include: util crypto carrier", text)
        self.assertIn("lab/impair", text)
        order = [l.split()[0] for l in lines]
        self.assertLess(order.index("crypto"), order.index("carrier"))
        self.assertLess(order.index("carrier"), order.index("wire"))


if __name__ == "__main__":
    unittest.main()
