"""Genesis start-up noise, kept off the user's terminal: the kernel compiler's notes about serialized loops and
the URDF loader's warning that the Go2's all-zero neutral pose lies outside its joint limits (true of every Go2;
the env never uses that pose). Everything else, real warnings included, still reaches the terminal."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from contextlib import contextmanager

NOISE = (
    "does not have effect on the struct for",                 # kernel compiler, printed from native code
    "Neutral robot position (qpos0) exceeds joint limits",
)


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not any(n in record.getMessage() for n in NOISE)


def quiet_genesis_logger() -> None:
    """Drop the noise from Genesis' Python logger (idempotent)."""
    logger = logging.getLogger("genesis")
    if not any(isinstance(f, _DropNoise) for f in logger.filters):
        logger.addFilter(_DropNoise())


@contextmanager
def filtered_stderr():
    """Run a block with the process's stderr (file descriptor 2, which native code writes to) captured, then pass
    on every line that is not noise."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            for line in tmp.read().decode("utf-8", "replace").splitlines(keepends=True):
                if not any(n in line for n in NOISE):
                    sys.stderr.write(line)
            sys.stderr.flush()
