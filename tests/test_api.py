import subprocess
import sys

import genocnn


def test_every_public_name_resolves():
    for name in genocnn.__all__:
        assert getattr(genocnn, name) is not None, name


def test_import_is_light():
    """`import genocnn` must not pull torch in (the CLI and FASTA reading start fast)."""
    code = "import sys, genocnn; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
