"""A small disk that can be filled and freed at will: a tmpfs mounted for one test, so
that "the disk is full" is the kernel's own ENOSPC, not a stand-in.

Mounting needs root (or CAP_SYS_ADMIN); where it is not permitted the test is skipped,
saying so. The mount is always undone, even when the test fails.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

#: The filler's name inside the disk.
FILLER = "filler.bin"


class SmallDisk:
    """A mounted tmpfs at :attr:`path`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fill(self) -> None:
        """Takes every free byte (a write then fails with ENOSPC, as on a full disk)."""
        descriptor = os.open(self.path / FILLER, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for chunk in (1 << 16, 1 << 12, 1):
                block = bytes(chunk)
                while True:
                    try:
                        os.write(descriptor, block)
                    except OSError as error:
                        if error.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(descriptor)

    def free(self) -> None:
        """Gives back what :meth:`fill` took."""
        (self.path / FILLER).unlink(missing_ok=True)


@contextlib.contextmanager
def small_disk(path: Path, size: str = "4m") -> Iterator[SmallDisk]:
    """A tmpfs of ``size`` (``mount -o size=``) at ``path``, created as needed."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root: the disk-full test cannot run here")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"mount -t tmpfs is not permitted here ({mounted.stderr.strip()})")
    try:
        yield SmallDisk(path)
    finally:
        unmounted = subprocess.run(["umount", str(path)], capture_output=True, timeout=30)
        if unmounted.returncode != 0:  # still busy (a child that would not die): detach it
            subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)
