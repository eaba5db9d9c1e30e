"""Download a file once, check its MD5, and unpack tar archives safely.

- :func:`fetch` writes to ``<dest>.part`` and renames only after the checksum matched, so an interrupted
  download never looks finished. Offline (``A2_OFFLINE=1``) or on a network error it raises
  :class:`DataUnavailableError`, which says what to download by hand and where to put it.
- :func:`extract_tar` refuses members that would land outside the destination folder.
"""
import hashlib
import os
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath

from . import settings

_CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """Base class of the errors raised here."""


class DataUnavailableError(DownloadError):
    """The file is not on disk and cannot be downloaded now (offline or network error)."""


class ChecksumMismatchError(DownloadError):
    """The downloaded bytes are not the expected file (wrong MD5 or size); they were deleted."""


class UnsafeArchiveError(DownloadError):
    """A tar member would be written outside the destination, or is a device/special file."""


def md5_of(path):
    """Hex MD5 digest of a file, read in 1 MiB chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _by_hand(url, dest, md5, hint):
    checksum = f" (md5 {md5})" if md5 else ""
    return f"Download it by hand from {url}{checksum} and save it as {dest}" + (f"; {hint}" if hint else "") + "."


def fetch(url, dest, md5, expected_size=None, *, hint=None, timeout=60, quiet=False):
    """Make sure ``dest`` holds the file at ``url`` with MD5 ``md5``; return ``dest`` as a Path.

    An existing ``dest`` with the right checksum is reused without any network access. ``hint`` is
    added to error messages (for example where to point ``A2_DATA_DIR`` instead). ``md5=None`` is for
    files whose official checksum is not published: then only ``expected_size`` is verified (when
    given), and the caller must check the content itself (e.g. the number of files extracted).
    """
    dest = Path(dest)
    md5 = md5.lower() if md5 else None
    if dest.is_file():
        if (md5_of(dest) == md5) if md5 else expected_size in (None, dest.stat().st_size):
            return dest
        if not quiet:
            print(f"{dest} exists but its md5 is wrong; downloading it again")
    if settings.offline():
        raise DataUnavailableError(
            f"{dest.name} is needed but A2_OFFLINE=1 forbids downloading it. " + _by_hand(url, dest, md5, hint)
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.md5()
    size = 0
    if not quiet:
        print(f"Downloading {url} -> {dest}")
    try:
        opener = urllib.request.build_opener()  # built per call, so proxy variables are read now
        with opener.open(url, timeout=timeout) as response, open(part, "wb") as out:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
    except (urllib.error.URLError, OSError, ValueError) as error:
        part.unlink(missing_ok=True)
        reason = getattr(error, "reason", None) or error
        raise DataUnavailableError(
            f"Could not download {url}: {reason}. " + _by_hand(url, dest, md5, hint)
        ) from error
    problems = []
    if expected_size is not None and size != expected_size:
        problems.append(f"{size} bytes instead of {expected_size}")
    if md5 and digest.hexdigest() != md5:
        problems.append(f"md5 {digest.hexdigest()} instead of {md5}")
    if problems:
        part.unlink(missing_ok=True)
        raise ChecksumMismatchError(
            f"The download of {url} is not the expected file ({'; '.join(problems)}); it was deleted. "
            "Try again later. " + _by_hand(url, dest, md5, hint)
        )
    os.replace(part, dest)
    return dest


def _check_member(member, dest):
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts or "\\" in member.name:
        raise UnsafeArchiveError(f"archive member {member.name!r} points outside {dest}; nothing extracted")
    if member.issym() or member.islnk():
        target = PurePosixPath(member.linkname)
        base = name.parent if member.issym() else PurePosixPath()
        if target.is_absolute() or ".." in (base / target).parts:
            raise UnsafeArchiveError(
                f"archive member {member.name!r} links to {member.linkname!r} outside {dest}; nothing extracted"
            )
    elif not (member.isfile() or member.isdir()):
        raise UnsafeArchiveError(f"archive member {member.name!r} is a device or special file; nothing extracted")


def extract_tar(archive, dest):
    """Extract a (possibly compressed) tar archive into ``dest``, refusing unsafe members.

    Every member is checked before anything is written; Python's ``filter="data"`` is used on top
    when this Python has it.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        for member in members:
            _check_member(member, dest)
        if hasattr(tarfile, "data_filter"):
            try:
                tar.extractall(dest, members=members, filter="data")
            except tarfile.FilterError as error:
                raise UnsafeArchiveError(f"unsafe member in {archive}: {error}") from error
        else:  # checked above
            tar.extractall(dest, members=members)
    return dest


def remove_tree(path):
    """Delete a folder if it exists (used to clean half-finished extractions)."""
    shutil.rmtree(path, ignore_errors=True)
