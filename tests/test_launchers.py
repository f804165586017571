"""Sweep workers' exit statuses (the workers themselves are trained in test_sweep_workers.py)."""

import signal
import subprocess
import sys

from ait.launchers import worst_status


def test_a_worker_killed_by_a_signal_is_a_failure_beside_one_that_succeeded():
    killed = subprocess.run([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"])
    assert killed.returncode == -signal.SIGKILL
    assert worst_status([0, killed.returncode]) == 128 + signal.SIGKILL  # what a shell reports: 137
    assert worst_status([0, 0]) == 0 and worst_status([2, 0]) == 2 and worst_status([]) == 0
