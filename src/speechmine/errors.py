"""The one place that decides how a failure reaches the user.

Expected failures — a bad config, bad input data, a missing or unsafe model file, a locked
directory, and operating-system errors such as a full disk (ENOSPC), a read-only file system
(EROFS) or a permission (EACCES) — become one line naming the file, line and key, and exit
code 2. Anything else is a bug: its traceback is printed with a line asking to report it
(exit code 1). An interrupt (Ctrl-C) exits with 130, as shells expect.
"""

from __future__ import annotations

import errno
import os

#: extra words for the operating-system errors users meet most
_OS_HINTS = {
    errno.ENOSPC: "the disk is full: free space or choose another output_dir/work_dir",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EROFS: "the file system is read-only: choose another output_dir/work_dir",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "this is a folder, a file was expected",
    errno.ELOOP: "too many levels of symbolic links (a symlink loop?)",
    errno.ENAMETOOLONG: "the path is too long",
    errno.EIO: "input/output error from the device or network file system",
}

EXIT_USER_ERROR = 2
EXIT_BUG = 1
EXIT_INTERRUPTED = 130


def expected_types() -> tuple[type[BaseException], ...]:
    """The exception types that are the user's or the environment's, not a bug."""
    from .config import ConfigError
    from .encoders import EncoderError
    from .executors.base import JobFailed
    from .io.embeddings import EmbeddingFileError
    from .io.manifest import ManifestError
    from .pipeline.lock import RunLockedError
    from .segment import SegmentError
    from .types import InputError

    return (ConfigError, InputError, EncoderError, EmbeddingFileError, RunLockedError,
            ManifestError, SegmentError, JobFailed, OSError)


def os_error_message(exc: OSError) -> str:
    """``path: what went wrong (hint)`` for an operating-system error."""
    paths = [p for p in (exc.filename, exc.filename2) if p is not None]
    where = " → ".join(os.fsdecode(p) for p in paths)
    what = exc.strerror or str(exc) or type(exc).__name__
    hint = _OS_HINTS.get(exc.errno or -1)
    text = f"{where}: {what}" if where else what
    return f"{text} ({hint})" if hint and hint.lower() != what.lower() else text


def user_message(exc: BaseException) -> str | None:
    """The one-line message of an expected failure, or None for a bug."""
    if not isinstance(exc, expected_types()):
        return None
    if isinstance(exc, OSError) and not _is_ours(exc):
        return os_error_message(exc)
    return str(exc)


def _is_ours(exc: OSError) -> bool:
    """speechmine's own OSError subclasses carry a full message already."""
    return type(exc).__module__.startswith("speechmine")
