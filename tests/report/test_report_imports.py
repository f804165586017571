"""Reports are built from run directories alone: importing them loads no torch (a light install can read runs)."""

import subprocess
import sys


def test_importing_the_report_package_loads_no_torch():
    code = "import sys, ait.report, ait.strategies, ait.runtime.files; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
