"""Download the public hls4ml jet data set (OpenML 42468 or Zenodo 3602254).

Each source is asked through its public JSON API for the file list and the published
MD5 checksums; files are fetched into a cache folder with resumable partial downloads
(HTTP Range), verified, and then converted to the canonical HDF5 layout by `convert`.
Base URLs can be pointed at a mirror (or a local test server) by argument or environment.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from tqdm import tqdm

from qapflow.common.cache import cache_root
from qapflow.common.errors import DownloadError
from qapflow.common.hashing import file_digest

OPENML_DATASET_ID = 42468
ZENODO_RECORD_ID = 3602254
OPENML_API = os.environ.get("QAPFLOW_OPENML_API", "https://www.openml.org/api/v1/json")
ZENODO_API = os.environ.get("QAPFLOW_ZENODO_API", "https://zenodo.org/api")
TIMEOUT_S = 60
BLOCK = 1 << 20


@dataclass(frozen=True)
class RemoteFile:
    url: str
    name: str
    md5: str | None  # None where the source publishes no checksum (OpenML's parquet copy)
    size: int | None = None


def default_cache_dir() -> Path:
    return cache_root() / "downloads"


def _open(url: str, headers: dict | None = None):
    request = urllib.request.Request(url, headers={"User-Agent": "qapflow", **(headers or {})})
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{url}: server answered HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        host = urlparse(url).netloc
        raise DownloadError(
            f"cannot reach {host} ({getattr(exc, 'reason', exc)}): offline or blocked? "
            "Use `qapflow data generate` to make the data set locally."
        ) from exc


def get_json(url: str) -> dict:
    with _open(url) as response:
        try:
            return json.loads(response.read())
        except json.JSONDecodeError as exc:
            raise DownloadError(f"{url}: answer is not JSON ({exc})") from exc


def openml_files(api: str = OPENML_API, fmt: str = "arff") -> list[RemoteFile]:
    """The data file of OpenML data set 42468, from its description."""
    desc = get_json(f"{api}/data/{OPENML_DATASET_ID}").get("data_set_description")
    if not desc:
        raise DownloadError(f"{api}: no data_set_description for data set {OPENML_DATASET_ID}")
    if fmt == "arff":
        return [RemoteFile(desc["url"], f"openml_{OPENML_DATASET_ID}.arff", desc.get("md5_checksum"))]
    if fmt == "parquet":
        if not desc.get("parquet_url"):
            raise DownloadError(f"OpenML data set {OPENML_DATASET_ID} lists no parquet copy")
        return [RemoteFile(desc["parquet_url"], f"openml_{OPENML_DATASET_ID}.pq", None)]
    raise DownloadError(f"unknown OpenML format {fmt!r}; use arff or parquet")


def zenodo_files(api: str = ZENODO_API) -> list[RemoteFile]:
    """The h5 archives of Zenodo record 3602254 with their published MD5 checksums."""
    record = get_json(f"{api}/records/{ZENODO_RECORD_ID}")
    files = []
    for entry in record.get("files", []):
        algo, _, digest = entry.get("checksum", "").partition(":")
        url = entry.get("links", {}).get("self") or entry.get("links", {}).get("content")
        if not url:
            raise DownloadError(f"Zenodo record {ZENODO_RECORD_ID}: file {entry.get('key')} has no link")
        files.append(RemoteFile(url, entry["key"], digest if algo == "md5" else None, entry.get("size")))
    if not files:
        raise DownloadError(f"Zenodo record {ZENODO_RECORD_ID} lists no files")
    return files


def fetch(remote: RemoteFile, cache_dir: Path, progress: bool = True) -> Path:
    """Download `remote` into `cache_dir`, resuming a partial `.part` file; verify its MD5.

    A file already in the cache with the right checksum is not fetched again.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    final = cache_dir / remote.name
    if final.exists() and (remote.md5 is None or file_digest(final, 'md5') == remote.md5):
        return final
    part = cache_dir / (remote.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        response = _open(remote.url, headers)
    except DownloadError as exc:
        if have and "HTTP 416" in str(exc):  # the part is already complete
            response = None
        else:
            raise
    if response is not None:
        with response:
            resumed = response.status == 206
            mode = "ab" if resumed else "wb"
            have = have if resumed else 0
            total = response.headers.get("Content-Length")
            total = int(total) + have if total else remote.size
            with open(part, mode) as f, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=remote.name,
                disable=not progress,
            ) as bar:
                for block in iter(lambda: response.read(BLOCK), b""):
                    f.write(block)
                    bar.update(len(block))
    if remote.md5 is not None:
        got = file_digest(part, 'md5')
        if got != remote.md5:
            part.unlink()
            raise DownloadError(
                f"{remote.name}: MD5 {got} differs from the published {remote.md5}; "
                "the partial file was removed, run the download again"
            )
    os.replace(part, final)
    return final


def download(source: str, cache_dir: Path | None = None, api: str | None = None,
             fmt: str = "arff", progress: bool = True) -> list[Path]:
    """Fetch every file of `source` ('openml' or 'zenodo') into the cache; return their paths."""
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    if source == "openml":
        remotes = openml_files(api or OPENML_API, fmt)
    elif source == "zenodo":
        remotes = zenodo_files(api or ZENODO_API)
    else:
        raise DownloadError(f"unknown source {source!r}; use openml or zenodo")
    return [fetch(r, cache_dir / source, progress) for r in remotes]


def download_to_h5(source: str, out_dir, cache_dir: Path | None = None, api: str | None = None,
                   fmt: str = "arff", progress: bool = True) -> Path:
    """Download `source` and write it as the canonical `OUT_DIR/jets_<source>.h5`."""
    from qapflow.data.h5file import write_jets
    from qapflow.data.sources import load_jets, read_zenodo_tree

    paths = download(source, cache_dir, api, fmt, progress)
    arrays = read_zenodo_tree(paths) if source == "zenodo" else load_jets(paths[0])
    arrays.attrs["downloaded_from"] = source
    out = Path(out_dir) / f"jets_{source}.h5"
    write_jets(out, arrays)
    return out
