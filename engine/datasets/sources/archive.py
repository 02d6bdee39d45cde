"""Unpacking uploaded .zip files safely: nothing may land outside the folder it goes into, and
no zip may cost more than the limits (entries, total size, compression ratio).

Every entry is checked before anything is written. Entries that are not images (by their
extension, as Pillow knows them) are skipped and reported, never extracted; links and paths
that climb out are refused. Extraction streams each entry and stops at the size its header
declares (zipfile checks the CRC), so a lying header cannot blow the budget either.
"""

from __future__ import annotations

import re
import shutil
import stat
import zipfile
from functools import lru_cache
from pathlib import Path, PurePosixPath

from PIL import Image

from engine.datasets.errors import DatasetError
from engine.state import limits

_DRIVE = re.compile(r"^[A-Za-z]:")
_BIG_ENTRY = 1 << 20  # the ratio check applies to entries above 1 MiB (tiny files compress well)


def is_zip(path: Path) -> bool:
    return path.is_file() and zipfile.is_zipfile(path)


@lru_cache(maxsize=1)
def image_extensions() -> frozenset[str]:
    """Every file extension Pillow can open (.png, .jpg, .tif, .webp, ...)."""
    Image.init()
    return frozenset(ext.lower() for ext, fmt in Image.registered_extensions().items()
                     if fmt in Image.OPEN)


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


def plan(path: Path, members: list[zipfile.ZipInfo]
         ) -> tuple[list[zipfile.ZipInfo], list[dict[str, str]]]:
    """The entries to extract and the ones skipped (with why), or DatasetError for a zip that
    breaks a rule or a limit. Reads only the central directory."""
    cap_entries = limits.ZIP_ENTRIES.value
    if len(members) > cap_entries:
        raise DatasetError(f"refusing {path.name}: {len(members):,} entries, above the limit "
                           f"of {cap_entries:,} ({limits.ZIP_ENTRIES.name})")
    keep: list[zipfile.ZipInfo] = []
    skipped: list[dict[str, str]] = []
    images = image_extensions()
    ratio_cap = limits.ZIP_RATIO.value
    for member in members:
        reason = unsafe_reason(member)
        if reason:
            raise DatasetError(f"refusing {path.name}: entry {member.filename!r} {reason}")
        if member.is_dir():
            continue
        name = PurePosixPath(member.filename.replace("\\", "/"))
        if any(part.startswith(".") or part == "__MACOSX" for part in name.parts):
            continue  # system litter (.DS_Store, __MACOSX), as the folder reader ignores it
        if name.suffix.lower() not in images:
            skipped.append({"file": member.filename, "reason": "not an image file (skipped "
                                                               "without extracting)"})
            continue
        if (member.file_size > _BIG_ENTRY
                and member.file_size > ratio_cap * max(member.compress_size, 1)):
            raise DatasetError(
                f"refusing {path.name}: entry {member.filename!r} expands "
                f"{member.file_size / max(member.compress_size, 1):,.0f}-fold "
                f"({limits.size(member.compress_size)} -> {limits.size(member.file_size)}), "
                f"above the {ratio_cap}x limit ({limits.ZIP_RATIO.name})")
        keep.append(member)
    total = sum(m.file_size for m in keep)
    cap_bytes = limits.ZIP_BYTES.value
    if total > cap_bytes:
        raise DatasetError(f"refusing {path.name}: its images unpack to {limits.size(total)}, "
                           f"above the {limits.size(cap_bytes)} limit ({limits.ZIP_BYTES.name})")
    return keep, skipped


def extract_zip(path: Path, dest: Path) -> tuple[Path, list[dict[str, str]]]:
    """Check every entry first, then extract the image entries into `dest` (created);
    returns `dest` and the entries skipped."""
    try:
        with zipfile.ZipFile(path) as zf:
            keep, skipped = plan(path, zf.infolist())
            dest.mkdir(parents=True, exist_ok=True)
            _check_space(path, dest, sum(m.file_size for m in keep))
            root = dest.resolve()
            for member in keep:
                target = (dest / member.filename.replace("\\", "/")).resolve()
                if not target.is_relative_to(root):  # belt and braces after unsafe_reason
                    raise DatasetError(f"refusing {path.name}: entry {member.filename!r} "
                                       "lands outside the folder")
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
    except zipfile.BadZipFile as e:
        raise DatasetError(f"{path.name} is not a valid zip file: {e}") from None
    except (RuntimeError, NotImplementedError) as e:  # encrypted entries, unknown compression
        raise DatasetError(f"cannot extract {path.name}: {e}") from None
    except (OSError, EOFError) as e:
        raise DatasetError(f"cannot extract {path.name}: {e}") from None
    return dest, skipped


def _check_space(path: Path, dest: Path, needed: int) -> None:
    free = shutil.disk_usage(dest).free
    if needed > free:
        raise DatasetError(f"{path.name} unpacks to {needed / 1e9:.1f} GB but the workspace "
                           f"has only {free / 1e9:.1f} GB free")
