"""Downloads from OpenML and Zenodo, against a loopback server holding files in their formats."""

import hashlib
import json

import numpy as np
import pytest

from qapflow.common.errors import DownloadError
from qapflow.data.download import RemoteFile, download_to_h5, fetch
from qapflow.data.h5file import read_jets
from tests.formats import write_arff, write_parquet, zenodo_tarball
from tests.http_server import FileServer


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture
def server():
    with FileServer() as s:
        yield s


def publish_openml(server, tmp_path, arrays, corrupt_md5=False):
    arff = tmp_path / "src.arff"
    write_arff(arff, arrays)
    pq = tmp_path / "src.pq"
    write_parquet(pq, arrays)
    server.files["/files/42468.arff"] = arff.read_bytes()
    server.files["/files/42468.pq"] = pq.read_bytes()
    desc = {
        "data_set_description": {
            "id": "42468",
            "name": "hls4ml_lhc_jets_hlf",
            "format": "ARFF",
            "url": server.url + "/files/42468.arff",
            "md5_checksum": "0" * 32 if corrupt_md5 else md5(arff.read_bytes()),
            "parquet_url": server.url + "/files/42468.pq",
        }
    }
    server.files["/api/v1/json/data/42468"] = json.dumps(desc).encode()
    return server.url + "/api/v1/json"


def assert_same_jets(loaded, arrays):
    assert np.array_equal(loaded.features, arrays.features)
    assert np.array_equal(loaded.labels, arrays.labels)


@pytest.mark.parametrize("fmt", ["arff", "parquet"])
def test_openml_download_converts_to_the_canonical_file(server, tmp_path, small_jets, fmt):
    api = publish_openml(server, tmp_path, small_jets)
    out = download_to_h5("openml", tmp_path / "out", tmp_path / "cache", api, fmt, progress=False)
    assert out.name == "jets_openml.h5"
    assert_same_jets(read_jets(out), small_jets)


def test_zenodo_download_reads_every_h5_in_the_archives(server, tmp_path, small_jets):
    train, val = small_jets.subset(slice(0, 60)), small_jets.subset(slice(60, None))
    archives = {"hls4ml_LHCjet_100p_train.tar.gz": zenodo_tarball(train, 3),
                "hls4ml_LHCjet_100p_val.tar.gz": zenodo_tarball(val, 2)}
    record = {"files": [
        {"key": k, "checksum": f"md5:{md5(v)}", "size": len(v),
         "links": {"self": f"{server.url}/files/{k}"}}
        for k, v in archives.items()
    ]}
    for k, v in archives.items():
        server.files[f"/files/{k}"] = v
    server.files["/api/records/3602254"] = json.dumps(record).encode()
    out = download_to_h5("zenodo", tmp_path / "out", tmp_path / "cache", server.url + "/api",
                         progress=False)
    # archives are read in name order (train, val), files within them in name order
    loaded = read_jets(out)
    assert len(loaded) == len(small_jets)
    assert_same_jets(loaded.subset(slice(0, 60)), train)


def test_partial_download_resumes_with_a_range_request(server, tmp_path):
    body = np.random.default_rng(1).bytes(3_000_000)
    server.files["/big.bin"] = body
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "big.bin.part").write_bytes(body[:1_234_567])
    path = fetch(RemoteFile(server.url + "/big.bin", "big.bin", md5(body)), cache, progress=False)
    assert path.read_bytes() == body
    assert server.requests == [("/big.bin", "bytes=1234567-")]
    assert not (cache / "big.bin.part").exists()


def test_server_without_range_support_restarts_cleanly(server, tmp_path):
    body = b"abcdefghij" * 1000
    server.files["/f.bin"] = body
    server.honour_range = False
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "f.bin.part").write_bytes(b"XXXX")
    path = fetch(RemoteFile(server.url + "/f.bin", "f.bin", md5(body)), cache, progress=False)
    assert path.read_bytes() == body


def test_cached_file_with_good_checksum_is_not_fetched_again(server, tmp_path):
    body = b"cached" * 100
    server.files["/c.bin"] = body
    remote = RemoteFile(server.url + "/c.bin", "c.bin", md5(body))
    fetch(remote, tmp_path, progress=False)
    fetch(remote, tmp_path, progress=False)
    assert len(server.requests) == 1


def test_checksum_mismatch_is_an_error_and_keeps_nothing(server, tmp_path, small_jets):
    api = publish_openml(server, tmp_path, small_jets, corrupt_md5=True)
    with pytest.raises(DownloadError, match="MD5 .* differs from the published"):
        download_to_h5("openml", tmp_path / "out", tmp_path / "cache", api, progress=False)
    assert not any((tmp_path / "cache" / "openml").iterdir())
    assert not (tmp_path / "out" / "jets_openml.h5").exists()


def test_offline_gives_a_clear_error(tmp_path):
    with pytest.raises(DownloadError, match="cannot reach 127.0.0.1:9 .*offline"):
        download_to_h5("zenodo", tmp_path, tmp_path / "cache", "http://127.0.0.1:9/api",
                       progress=False)


def test_http_error_names_the_url(server, tmp_path):
    with pytest.raises(DownloadError, match="records/3602254: server answered HTTP 404"):
        download_to_h5("zenodo", tmp_path, tmp_path / "cache", server.url + "/api", progress=False)
