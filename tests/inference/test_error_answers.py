"""Whatever goes wrong behind a request, inference answers the one JSON error shape with its
request id, names no path of its cache, and serves on afterwards."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from inference import errors
from tests.inference.conftest import Service


def tar_of(files: list[tuple[str, bytes]]) -> bytes:
    """A tar holding `files` in order (GNU long names where needed)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def with_config(artifact: bytes, config: dict[str, object]) -> bytes:
    """`artifact` with its `config.json` replaced by `config`."""
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(artifact)) as tar:
        for member in tar:
            extracted = tar.extractfile(member)
            if extracted is not None:
                files[member.name] = extracted.read()
    files["config.json"] = json.dumps(config).encode()
    return tar_of(list(files.items()))


def assert_json_error(status: int, text: str, rid: str, code: str, hidden: Path) -> None:
    """A 502 `code` in the one shape, with its request id `rid` and no path of ours."""
    assert status == 502, text
    body = json.loads(text)
    assert body["code"] == code, text
    assert body["request_id"] == rid
    assert str(hidden) not in text
    assert "/tmp/" not in text


HOSTILE: dict[str, tuple[str, list[tuple[str, bytes]] | bytes | None]] = {
    "unknown-model-type": ("UNLOADABLE_ARTIFACT", None),
    "long-member-name": ("UNSAFE_ARTIFACT", [("a" * 300, b"x")]),
    "deep-member-name": ("UNSAFE_ARTIFACT", [("/".join(["d" * 200] * 8), b"x")]),
    "duplicate-member": ("UNSAFE_ARTIFACT", [("config.json", b"{}"), ("config.json", b"{}")]),
    "not-a-model": ("UNLOADABLE_ARTIFACT", [("hello.txt", b"hello")]),
    "not-a-tar": ("UNSAFE_ARTIFACT", b"plain bytes, not a tar" * 40),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_artifact_is_a_json_error(
    service: Service, artifact: bytes, tmp_path: Path, case: str
) -> None:
    code, content = HOSTILE[case]
    if content is None:
        blob = with_config(artifact, {"model_type": "no-such-model", "vocab_size": 300})
    elif isinstance(content, bytes):
        blob = content
    else:
        blob = tar_of(content)
    service.publish("run-1", blob)
    generated = service.client.post("/generate", json={"run_id": "run-1", "prompt": "x"})
    rid = generated.headers["X-Request-ID"]
    assert_json_error(generated.status_code, generated.text, rid, code, tmp_path)
    scored = service.client.post("/score", json={"run_id": "run-1", "text": "x"})
    rid = scored.headers["X-Request-ID"]
    assert_json_error(scored.status_code, scored.text, rid, code, tmp_path)
    service.publish("run-2", artifact)
    assert service.generate(run_id="run-2", prompt="The", max_new_tokens=2).run_id == "run-2"


def test_paths_are_cut_to_their_last_part() -> None:
    text = "no file in /srv/cache/.staging-1/tree/config.json; POST /files: http://h:1/a/b"
    assert errors.without_paths(text) == "no file in config.json; POST /files: http://h:1/a/b"
