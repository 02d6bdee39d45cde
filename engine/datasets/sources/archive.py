"""Unpacking uploaded .zip files safely: nothing may land outside the folder it goes into."""

from __future__ import annotations

import re
import shutil
import stat
import zipfile
from pathlib import Path

from engine.datasets.errors import DatasetError

_DRIVE = re.compile(r"^[A-Za-z]:")


def is_zip(path: Path) -> bool:
    return path.is_file() and zipfile.is_zipfile(path)


def unsafe_reason(member: zipfile.ZipInfo) -> str | None:
    """Why an entry must not be extracted (zip slip, links), or None when it is fine."""
    name = member.filename.replace("\\", "/")
    if name.startswith("/") or _DRIVE.match(name):
        return "is an absolute path"
    if ".." in name.split("/"):
        return "climbs out of the archive with '..'"
    if stat.S_ISLNK(member.external_attr >> 16):
        return "is a symbolic link"
    return None


def extract_zip(path: Path, dest: Path) -> Path:
    """Check every entry first, then extract all of them into `dest` (created)."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = zf.infolist()
            for member in members:
                reason = unsafe_reason(member)
                if reason:
                    raise DatasetError(f"refusing {path.name}: entry {member.filename!r} "
                                       f"{reason}")
            dest.mkdir(parents=True, exist_ok=True)
            _check_space(path, dest, sum(m.file_size for m in members))
            zf.extractall(dest)
    except zipfile.BadZipFile as e:
        raise DatasetError(f"{path.name} is not a valid zip file: {e}") from None
    except RuntimeError as e:  # encrypted entries, unsupported compression
        raise DatasetError(f"cannot extract {path.name}: {e}") from None
    return dest


def _check_space(path: Path, dest: Path, needed: int) -> None:
    free = shutil.disk_usage(dest).free
    if needed > free:
        raise DatasetError(f"{path.name} unpacks to {needed / 1e9:.1f} GB but the workspace "
                           f"has only {free / 1e9:.1f} GB free")
