"""a2cnn.download: fetch with checksum, offline and network errors, safe tar extraction."""
import functools
import hashlib
import http.server
import io
import socket
import tarfile
import threading

import pytest

from a2cnn import download
from a2cnn.download import (ChecksumMismatchError, DataUnavailableError, UnsafeArchiveError, extract_tar,
                            fetch, md5_of)

PAYLOAD = b"CIFAR pretend archive\n" * 100


@pytest.fixture(autouse=True)
def _online(monkeypatch):
    monkeypatch.delenv("A2_OFFLINE", raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "server" / "file.bin"
    path.parent.mkdir()
    path.write_bytes(PAYLOAD)
    return path


@pytest.fixture
def http_server(source):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(source.parent))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_md5_of_known_value(tmp_path):
    path = tmp_path / "hello"
    path.write_bytes(b"hello")
    assert md5_of(path) == "5d41402abc4b2a76b9719d911017c592"
    big = tmp_path / "big"
    big.write_bytes(bytes(range(256)) * 10000)  # several read chunks
    assert md5_of(big) == hashlib.md5(big.read_bytes()).hexdigest()


def test_fetch_file_url(source, tmp_path):
    dest = tmp_path / "cache" / "file.bin"
    result = fetch(source.as_uri(), dest, hashlib.md5(PAYLOAD).hexdigest().upper(), expected_size=len(PAYLOAD),
                   quiet=True)
    assert result == dest and dest.read_bytes() == PAYLOAD
    assert not dest.with_name("file.bin.part").exists()


def test_fetch_http(http_server, tmp_path):
    dest = tmp_path / "cache" / "file.bin"
    fetch(f"{http_server}/file.bin", dest, hashlib.md5(PAYLOAD).hexdigest(), quiet=True)
    assert dest.read_bytes() == PAYLOAD


def test_checksum_mismatch_deletes_download(http_server, tmp_path):
    dest = tmp_path / "cache" / "file.bin"
    with pytest.raises(ChecksumMismatchError, match="md5 .* instead of 0{32}"):
        fetch(f"{http_server}/file.bin", dest, "0" * 32, quiet=True)
    assert not dest.exists() and not dest.with_name("file.bin.part").exists()


def test_size_mismatch_is_reported(source, tmp_path):
    dest = tmp_path / "file.bin"
    with pytest.raises(ChecksumMismatchError, match=f"{len(PAYLOAD)} bytes instead of 5"):
        fetch(source.as_uri(), dest, hashlib.md5(PAYLOAD).hexdigest(), expected_size=5, quiet=True)
    assert not dest.exists()


def test_without_published_md5_the_size_is_verified(source, tmp_path):
    dest = tmp_path / "out" / "file.bin"
    assert fetch(source.as_uri(), dest, None, expected_size=len(PAYLOAD)).read_bytes() == PAYLOAD
    with pytest.raises(ChecksumMismatchError, match="bytes instead of"):
        fetch(source.as_uri(), tmp_path / "other.bin", None, expected_size=len(PAYLOAD) + 1)
    assert not (tmp_path / "other.bin").exists()


def test_offline_explains_what_to_do(monkeypatch, source, tmp_path):
    monkeypatch.setenv("A2_OFFLINE", "1")
    dest = tmp_path / "cache" / "file.bin"
    md5 = hashlib.md5(PAYLOAD).hexdigest()
    with pytest.raises(DataUnavailableError) as info:
        fetch(source.as_uri(), dest, md5, hint="or set A2_DATA_DIR", quiet=True)
    message = str(info.value)
    assert "A2_OFFLINE" in message and source.as_uri() in message and str(dest) in message
    assert md5 in message and "A2_DATA_DIR" in message
    assert not dest.parent.exists()


def test_existing_good_file_is_reused_even_offline(monkeypatch, tmp_path):
    dest = tmp_path / "file.bin"
    dest.write_bytes(PAYLOAD)
    monkeypatch.setenv("A2_OFFLINE", "1")
    assert fetch("http://127.0.0.1:9/never-contacted", dest, hashlib.md5(PAYLOAD).hexdigest()) == dest


def test_existing_bad_file_is_replaced(source, tmp_path):
    dest = tmp_path / "file.bin"
    dest.write_bytes(b"stale")
    fetch(source.as_uri(), dest, hashlib.md5(PAYLOAD).hexdigest(), quiet=True)
    assert dest.read_bytes() == PAYLOAD


def test_http_404_is_data_unavailable(http_server, tmp_path):
    dest = tmp_path / "missing.bin"
    with pytest.raises(DataUnavailableError, match="Download it by hand"):
        fetch(f"{http_server}/missing.bin", dest, "0" * 32, quiet=True)
    assert not dest.exists() and not dest.with_name("missing.bin.part").exists()


def test_refused_connection_is_data_unavailable(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DataUnavailableError, match="Could not download"):
        fetch(f"http://127.0.0.1:{port}/x", tmp_path / "x", "0" * 32, timeout=5, quiet=True)


def test_missing_file_url_is_data_unavailable(tmp_path):
    with pytest.raises(DataUnavailableError):
        fetch((tmp_path / "nope.bin").as_uri(), tmp_path / "out.bin", "0" * 32, quiet=True)


def _tar(path, entries):
    """Write a tar.gz; entries: (name, bytes) for files or (name, ('sym'|'hard', target)) for links."""
    with tarfile.open(path, "w:gz") as tar:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            if isinstance(content, tuple):
                info.type = tarfile.SYMTYPE if content[0] == "sym" else tarfile.LNKTYPE
                info.linkname = content[1]
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return path


def test_extract_tar_normal(tmp_path):
    archive = _tar(tmp_path / "ok.tar.gz", [("top/a.txt", b"a"), ("top/sub/b.txt", b"bb"),
                                            ("top/link", ("sym", "a.txt"))])
    extract_tar(archive, tmp_path / "out")
    assert (tmp_path / "out" / "top" / "a.txt").read_bytes() == b"a"
    assert (tmp_path / "out" / "top" / "sub" / "b.txt").read_bytes() == b"bb"


@pytest.mark.parametrize("entries", [
    [("good.txt", b"x"), ("../escape.txt", b"evil")],
    [("good.txt", b"x"), ("/tmp/absolute-escape.txt", b"evil")],
    [("good.txt", b"x"), ("top/../../escape.txt", b"evil")],
    [("good.txt", b"x"), ("link", ("sym", "../../etc/passwd"))],
    [("good.txt", b"x"), ("link", ("sym", "/etc/passwd"))],
    [("good.txt", b"x"), ("hard", ("hard", "../outside"))],
])
def test_extract_tar_refuses_traversal(tmp_path, entries):
    archive = _tar(tmp_path / "evil.tar.gz", entries)
    out = tmp_path / "deep" / "out"
    with pytest.raises(UnsafeArchiveError, match="outside"):
        extract_tar(archive, out)
    assert not (out / "good.txt").exists(), "nothing may be extracted from an unsafe archive"
    assert not (tmp_path / "deep" / "escape.txt").exists()


def test_extract_tar_refuses_devices(tmp_path):
    archive = tmp_path / "dev.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("null")
        info.type = tarfile.CHRTYPE
        tar.addfile(info)
    with pytest.raises(UnsafeArchiveError, match="device"):
        extract_tar(archive, tmp_path / "out")


def test_module_exports():
    assert issubclass(DataUnavailableError, download.DownloadError)
    assert issubclass(ChecksumMismatchError, download.DownloadError)
