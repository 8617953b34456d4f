"""Red team round 10 (after check12): files a CI/build script writes and then runs, written
in forms ``mltrust check`` did not follow, so that a project installed a vulnerable pinned
package (or ran Python that unpickles its input) while ``no-vulnerable-dependencies`` (or
``no-dangerous-code``) passed. Each attack test failed before its fix (expected FAIL of the
control, actual PASS); the gaps found here were closed in round 11; the benign tests
show that ordinary projects using the same forms are not flagged.

Files are written by the tests (``_gate`` of round 5); payloads are built at run time
(``PICKLE_CODE``) so this file does not trip the project's own gate."""

from __future__ import annotations

from pathlib import Path

import pytest

import test_check_redteam9 as _rt9
from mltrust.policy import ControlStatus

db = _rt9.db  # the advisory fixture (evilpkg 1.5 is vulnerable)
_gate = _rt9._gate
VULN, CODE, COMPLETE, PICKLE_CODE = _rt9.VULN, _rt9.CODE, _rt9.COMPLETE, _rt9.PICKLE_CODE
INSTALL = _rt9.INSTALL
REQS = {"requirements.txt": "requests==2.32.3\n"}


# -- 01. write forms the reader did not track: the file run was looked up among the
# project's files, none was found, nothing was read. Expected: FAIL; actual before: PASS.
UNTRACKED = {
    # ``>& FILE`` (no digit after it) writes stdout and stderr into FILE, as ``&>`` does
    "dup-redirect": f"echo '{INSTALL}' >& gen.sh\nbash gen.sh\n",
    # ``cat`` of a file this script wrote: read as the project's file (absent: nothing)
    "cat-written": f"echo '{INSTALL}' > a.txt\ncat a.txt > gen.sh\nbash gen.sh\n",
    "cat-two": f"echo '{INSTALL}' > a.txt\ncat a.txt b.txt > gen.sh\nbash gen.sh\n",
    # ``install -m MODE SRC DEST``: three operands, the copy was not recorded
    "install-mode": f"echo '{INSTALL}' > a.txt\ninstall -m 755 a.txt gen.sh\n./gen.sh\n",
    # ``dd of=FILE`` copies its input into FILE
    "dd": f"echo '{INSTALL}' | dd of=gen.sh\nbash gen.sh\n",
    # echo's octal escape ``\\0NNN`` (``\\0160`` is ``p``) was read as ``\\016`` then ``0``
    "echo-octal": "echo -e '\\0160ip install evilpkg==1.5' > gen.sh\nbash gen.sh\n",
    # names outside the project folder, spelled the same when written and run
    "home-tilde": f"echo '{INSTALL}' > ~/gen.sh\nbash ~/gen.sh\n",
    "home-var": f"echo '{INSTALL}' > $HOME/gen.sh\nbash $HOME/gen.sh\n",
    "runner-temp": f'echo \'{INSTALL}\' > "$RUNNER_TEMP/gen.sh"\nbash "$RUNNER_TEMP/gen.sh"\n',
    # a written makefile run by ``make`` with no -f (the default name, or in -C DIR)
    "make-default": "printf 'b:\\n\\tpip install evilpkg==1.5\\n' > Makefile\nmake\n",
    "make-C": "mkdir d\nprintf 'b:\\n\\tpip install evilpkg==1.5\\n' > d/Makefile\nmake -C d\n",
    # ``sh -s`` reads its script from standard input
    "sh-s": f"echo '{INSTALL}' > gen.sh\nsh -s < gen.sh\n",
}


@pytest.mark.parametrize("name", sorted(UNTRACKED))
def test_attack_untracked_write_form(tmp_path: Path, db: Path, name: str) -> None:
    _, controls = _gate(tmp_path, db, {"ci.sh": "#!/bin/sh\n" + UNTRACKED[name], **REQS})
    assert controls[VULN] is ControlStatus.FAIL


# -- 02. gaps known in this round, closed in the next (test_check_redteam11 has more of each
# class): the file run is now read from what was written (followed), or fails closed
# (``python -c`` writes). Expected: FAIL; actual before: PASS.
GAPS = {
    # a written include file found through make -I DIR: files written into a -I folder are
    # read as makefiles the run may include (the project's Makefile includes it)
    "make-I-written": (
        "mkdir mk\nprintf 'b:\\n\\tpip install evilpkg==1.5\\n' > mk/a.inc\nmake -I mk\n"
    ),
    # a written makefile that includes another written file
    "make-f-written-include": (
        "printf 'b:\\n\\tpip install evilpkg==1.5\\n' > x.mk\n"
        "printf 'include x.mk\\n' > gen.mk\nmake -f gen.mk b\n"
    ),
    # the name written is a loop variable (``$f``): each of the loop's words is written
    "for-loop-name": f"for f in gen.sh; do echo '{INSTALL}' > $f; done\nbash gen.sh\n",
    "while-read-name": (
        f"echo gen.sh | while read f; do echo '{INSTALL}' > \"$f\"; done\nbash gen.sh\n"
    ),
    # Python writes the file: the names its -c code gives open() may hold any text
    "python-c-write": f"python3 -c \"open('gen.sh','w').write('{INSTALL}')\"\nbash gen.sh\n",
    # ``printf -v X``: the variable's value (what printf prints) replaces ``$X``
    "printf-v": f"printf -v X '%s' '{INSTALL}'\necho \"$X\" > gen.sh\nbash gen.sh\n",
}


@pytest.mark.parametrize("name", sorted(GAPS))
def test_attack_written_file_gap(tmp_path: Path, db: Path, name: str) -> None:
    files = {"ci.sh": "#!/bin/sh\n" + GAPS[name], "Makefile": "-include a.inc\n", **REQS}
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is ControlStatus.FAIL


def test_attack_written_python_on_stdin(tmp_path: Path, db: Path) -> None:
    # already read (a regression guard): Python reading a written file on standard input
    text = f"cat > gen.py <<'EOF'\n{PICKLE_CODE}\nEOF\npython3 < gen.py\n"
    _, controls = _gate(tmp_path, db, {"ci.sh": "#!/bin/sh\n" + text, **REQS})
    assert controls[CODE] is ControlStatus.FAIL


def test_attack_written_python_module_gap(tmp_path: Path, db: Path) -> None:
    # a package's __main__.py written by the script, run by ``python -m``: read (was: not)
    text = f"mkdir m\ncat > m/__main__.py <<'EOF'\n{PICKLE_CODE}\nEOF\npython3 -m m\n"
    _, controls = _gate(tmp_path, db, {"ci.sh": "#!/bin/sh\n" + text, **REQS})
    assert controls[CODE] is ControlStatus.FAIL


# -- ordinary projects using the forms above are not flagged ---------------------------------
BENIGN = {
    "install-binary": "install -m 755 tools/run.sh /usr/local/bin/run\nrun --help\n",
    "cat-config": "echo 'export A=1' > a.env\ncat a.env b.env > all.env\n. ./all.env\n",
    "dd-image": "dd if=/dev/zero of=disk.img bs=1M count=1\n",
    "log-dup": "pytest >& log.txt || cat log.txt\n",
    "home-profile": "echo 'export PATH=$HOME/bin:$PATH' > ~/.env.sh\n. ~/.env.sh\n",
    "sh-s-args": "sh -s -- --help < tools/run.sh\n",
    "make-written": "echo 'CC=gcc' > config.mk\nprintf 'all:\\n\\techo ok\\n' > Makefile\nmake\n",
}


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_ordinary_write_forms_are_clean(tmp_path: Path, db: Path, name: str) -> None:
    files = {"ci.sh": "#!/bin/sh\n" + BENIGN[name], "tools/run.sh": "echo run\n", **REQS}
    _, controls = _gate(tmp_path, db, files)
    assert controls[VULN] is not ControlStatus.FAIL
    assert controls[CODE] is ControlStatus.PASS
    assert controls[COMPLETE] is ControlStatus.PASS
