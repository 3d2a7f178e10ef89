"""The hostile-archive corpus: every archive an attacker or a careless operator could point a
run at, built here with `tarfile` and bytes, published through the real pipeline and asked
for with `/generate`.

Each is refused with the one JSON error (its code, the request id, a message that names no
path of this host); nothing is written outside the inference cache; the cache keeps no
partial extraction; no code the archive carries runs; and the service then still serves a
good model. The control, an archive made like `tar -C dir -cf x.tar .`, is served.

One service for the module, with small extraction limits, so a bomb is refused before it
writes more than a few MB. A hostile member comes after a whole model, so an archive that
got through would be served (200) instead of refused, and a refusal has a partial
extraction to clean up.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pickle
import random
import re
import sys
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest
import redis

from databank import ArtifactFetcher, ExtractLimits
from inference import Generator
from inference.admission import MAX_CONFIG_BYTES, WEIGHTS
from tests.harness import LocalBank
from tests.inference.conftest import Service, serving
from tests.inference.test_admission import GPT2_SMALL, files_of

LIMITS = ExtractLimits(max_members=64, max_total_bytes=2 * 2**20)
"""Room for the good model and a config at its bound, not for a bomb."""
GIB = 2**30
CONFIG = "config.json"
UNSAFE, UNLOADABLE, TOO_LARGE = "UNSAFE_ARTIFACT", "UNLOADABLE_ARTIFACT", "MODEL_TOO_LARGE"

Member = tuple[tarfile.TarInfo, bytes]


@dataclass(frozen=True)
class Corpus:
    """The module's service, and the places an escape would land."""

    service: Service
    root: Path
    """Holds the cache and `outside`, nothing else: a traversal from the cache lands here."""
    cache: Path
    outside: Path
    bait: Path
    """A file beside the cache that links point at and writes through them would change."""
    marker: Path
    """Written by the code a pickle or an `auto_map` carries, if it ever ran."""
    good: dict[str, bytes]
    """The good model's files by name."""
    bank_dir: Path
    published: dict[str, bytes] = field(default_factory=dict)
    """Every blob published, by file id."""

    def publish(self, run_id: str, blob: bytes) -> str:
        """Publish `blob` as the artifact of the completed run `run_id`; its file id."""
        file_id = self.service.publish(run_id, blob)
        self.published[file_id] = blob
        return file_id


@pytest.fixture(scope="module")
def corpus(
    redis_url: str,
    local_bank_server: LocalBank,
    artifact: bytes,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Corpus]:
    """One service for every case, its cache in a directory of its own, the good model
    published as run `good`."""
    root = tmp_path_factory.mktemp("hostile")
    outside = root / "outside"
    outside.mkdir()
    bait = outside / "bait.txt"
    bait.write_bytes(b"left alone\n")
    engine = redis.Redis.from_url(redis_url)
    engine.flushdb()
    local_bank_server.faults.reset()
    generator = Generator(max_models=2)
    try:
        with local_bank_server.client() as bank:
            fetcher = ArtifactFetcher(bank, root / "cache", LIMITS)
            with serving(engine, local_bank_server, fetcher, generator) as service:
                made = Corpus(
                    service=service,
                    root=root,
                    cache=root / "cache",
                    outside=outside,
                    bait=bait,
                    marker=outside / "code-ran",
                    good=files_of(artifact),
                    bank_dir=local_bank_server.data_dir,
                )
                made.publish("good", artifact)
                assert_serves(made)
                yield made
    finally:
        generator.close()
        engine.close()


# Building archives


def regular(name: str, data: bytes = b"x") -> Member:
    """A regular file member."""
    return tarfile.TarInfo(name), data


def special(name: str, kind: bytes, **fields: str | int) -> Member:
    """A member of type `kind` (a link, a device, a FIFO) with header `fields`."""
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in fields.items():
        setattr(info, key, value)
    return info, b""


def archive(*members: Member, raw: bytes = b"", form: int = tarfile.GNU_FORMAT) -> bytes:
    """A tar of `members`, then `raw` blocks written by hand, then the end-of-archive marker."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=form) as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
        end = tar.offset
    return buffer.getvalue()[:end] + raw + bytes(2 * tarfile.BLOCKSIZE)


def model(c: Corpus, changes: dict[str, bytes | None] | None = None) -> list[Member]:
    """The good model's files as members, with files replaced (bytes) or left out (None)."""
    files = {**c.good, **(changes or {})}
    return [regular(name, data) for name, data in files.items() if data is not None]


def with_config(c: Corpus, **changes: object) -> bytes:
    """The good model's `config.json` with `changes`."""
    return json.dumps({**json.loads(c.good[CONFIG]), **changes}).encode()


def _octal(value: int) -> bytes:
    return b"%011o\0" % value


def _checksummed(header: bytearray) -> bytes:
    header[148:156] = b" " * 8
    header[148:155] = b"%06o\0" % sum(header)
    return bytes(header)


def declared(name: str, size: int) -> bytes:
    """A header declaring `size` bytes that do not follow: what a bomb would claim."""
    info = tarfile.TarInfo(name)
    info.size = size
    return info.tobuf(format=tarfile.GNU_FORMAT)


def gnu_sparse(name: str, size: int) -> bytes:
    """An old-GNU sparse member (type `S`, which tarfile cannot write): one stored block,
    then a hole, unpacking to `size` bytes (the sparse map at 386, the real size at 483)."""
    info = tarfile.TarInfo(name)
    info.size = tarfile.BLOCKSIZE
    info.type = tarfile.GNUTYPE_SPARSE
    header = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
    header[386:410] = _octal(size - tarfile.BLOCKSIZE) + _octal(tarfile.BLOCKSIZE)
    header[483:495] = _octal(size)
    return _checksummed(header) + b"x" * tarfile.BLOCKSIZE


def pax_sparse(name: str, size: int) -> Member:
    """A GNU sparse 1.0 member in pax headers: a sparse map, then one stored block."""
    info = tarfile.TarInfo(f"GNUSparseFile.0/{name}")
    info.pax_headers = {
        "GNU.sparse.major": "1",
        "GNU.sparse.minor": "0",
        "GNU.sparse.name": name,
        "GNU.sparse.realsize": str(size),
    }
    block = tarfile.BLOCKSIZE
    return info, f"1\n{size - block}\n{block}\n".encode().ljust(block, b"\0") + b"x" * block


def pax_path(path: str) -> Member:
    """A member whose harmless name a pax `path` record replaces with `path`."""
    info = tarfile.TarInfo("harmless.txt")
    info.pax_headers = {"path": path}
    return info, b"x"


class _RunsOnLoad:
    """Pickles to a call of `os.mkdir(path)`: what unpickling the weights would run."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Callable[[str], None], tuple[str]]:
        return os.mkdir, (self.path,)


def pickled(c: Corpus) -> bytes:
    """The model with pickled weights (`pytorch_model.bin`) instead of safetensors."""
    weights = pickle.dumps(_RunsOnLoad(c.marker))
    return archive(*model(c, {WEIGHTS: None, "pytorch_model.bin": weights}))


def auto_map(c: Corpus) -> bytes:
    """The model naming code of its own in `config.json`'s `auto_map`: importing it writes the
    marker."""
    code = (
        f"from pathlib import Path\nPath({str(c.marker)!r}).write_text('ran')\n"
        "from transformers import GPT2Config, GPT2LMHeadModel\n"
        "class EvilConfig(GPT2Config):\n    pass\n"
        "class EvilModel(GPT2LMHeadModel):\n    config_class = EvilConfig\n"
    )
    names = {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilModel"}
    return archive(*model(c, {CONFIG: with_config(c, auto_map=names), "evil.py": code.encode()}))


def truncated(c: Corpus) -> bytes:
    """The good model's tar cut in the middle of its weights."""
    whole = archive(*model(c))
    with tarfile.open(fileobj=io.BytesIO(whole)) as tar:
        weights = tar.getmember(WEIGHTS)
    return whole[: weights.offset_data + weights.size // 2]


def zipped(c: Corpus) -> bytes:
    """The good model's files in a zip."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archived:
        for name, data in c.good.items():
            archived.writestr(name, data)
    return buffer.getvalue()


def member_bomb(c: Corpus) -> bytes:
    """Twice as many (empty) members as the service extracts."""
    empty = [regular(f"bomb/{i:04}", b"") for i in range(2 * LIMITS.max_members)]
    return archive(*model(c), *empty)


def spread_bomb(c: Corpus) -> bytes:
    """Real files, each well under the bound, that add up to more than it."""
    piece = LIMITS.max_total_bytes // 3
    return archive(*model(c), *(regular(f"pad/{i}", bytes(piece)) for i in range(4)))


# The cases


@dataclass(frozen=True)
class Case:
    """A hostile archive and how it must be refused."""

    code: str
    says: str
    """A fragment of the message: the refusal names the right reason."""
    build: Callable[[Corpus], bytes]


def member(*extra: Member) -> Callable[[Corpus], bytes]:
    """The good model followed by `extra` members."""
    return lambda c: archive(*model(c), *extra)


OUTSIDE = "outside the target"
NOT_REGULAR = "not a regular file or directory"
NOT_A_TAR = "not a readable tar"
TOO_MANY_BYTES = f"more than {LIMITS.max_total_bytes} bytes"
TOO_LONG = "longer than"

REFUSED: dict[str, Case] = {
    "traversal": Case(UNSAFE, OUTSIDE, member(regular("../x"))),
    "traversal-into-the-cache": Case(UNSAFE, OUTSIDE, member(regular("../../escaped.txt"))),
    "traversal-beside-the-cache": Case(UNSAFE, OUTSIDE, member(regular("../../../escaped.txt"))),
    "traversal-nested": Case(UNSAFE, OUTSIDE, member(regular("a/../../../../escaped.txt"))),
    "traversal-pax-path": Case(
        UNSAFE,
        OUTSIDE,
        lambda c: archive(*model(c), pax_path("../../../escaped.txt"), form=tarfile.PAX_FORMAT),
    ),
    "absolute-path": Case(
        UNSAFE, OUTSIDE, lambda c: archive(*model(c), regular(str(c.outside / "absolute.txt")))
    ),
    "dot-as-a-file": Case(UNSAFE, OUTSIDE, member(regular("."))),
    "symlink-inside": Case(
        UNSAFE, NOT_REGULAR, member(special("alias.json", tarfile.SYMTYPE, linkname=CONFIG))
    ),
    "symlink-outside": Case(
        UNSAFE,
        NOT_REGULAR,
        lambda c: archive(
            *model(c),
            special("escape", tarfile.SYMTYPE, linkname=str(c.outside)),
            regular("escape/through.txt"),
        ),
    ),
    "hardlink-inside": Case(
        UNSAFE, NOT_REGULAR, member(special("copy.json", tarfile.LNKTYPE, linkname=CONFIG))
    ),
    "hardlink-outside": Case(
        UNSAFE,
        NOT_REGULAR,
        lambda c: archive(
            *model(c),
            special("bait.txt", tarfile.LNKTYPE, linkname=str(c.bait)),
            regular("bait.txt", b"written through the link"),
        ),
    ),
    "character-device": Case(
        UNSAFE, NOT_REGULAR, member(special("null", tarfile.CHRTYPE, devmajor=1, devminor=3))
    ),
    "block-device": Case(
        UNSAFE, NOT_REGULAR, member(special("disk", tarfile.BLKTYPE, devmajor=7, devminor=0))
    ),
    "fifo": Case(UNSAFE, NOT_REGULAR, member(special("pipe", tarfile.FIFOTYPE))),
    "member-count-bomb": Case(UNSAFE, f"more than {LIMITS.max_members} members", member_bomb),
    "size-bomb-declared": Case(
        UNSAFE,
        TOO_MANY_BYTES,
        lambda c: archive(*model(c), raw=declared("model-2.safetensors", 64 * GIB)),
    ),
    "size-bomb-spread": Case(UNSAFE, TOO_MANY_BYTES, spread_bomb),
    "sparse-gnu": Case(
        UNSAFE, "sparse", lambda c: archive(*model(c), raw=gnu_sparse("big.safetensors", GIB))
    ),
    "sparse-pax": Case(
        UNSAFE,
        "sparse",
        lambda c: archive(*model(c), pax_sparse("big.safetensors", GIB), form=tarfile.PAX_FORMAT),
    ),
    "duplicate-name": Case(UNSAFE, "appears twice", member(regular(CONFIG, b"{}"))),
    "duplicate-dot-slash": Case(UNSAFE, "appears twice", member(regular(f"./{CONFIG}", b"{}"))),
    "file-then-directory": Case(UNSAFE, "appears twice", member(regular(f"{CONFIG}/x"))),
    "file-then-deep-directory": Case(
        UNSAFE, "passes through a file", member(regular(f"{CONFIG}/a/b/x"))
    ),
    "over-long-member-name": Case(UNSAFE, TOO_LONG, member(regular("a" * 300))),
    "over-long-member-path": Case(UNSAFE, TOO_LONG, member(regular("/".join(["d" * 200] * 8)))),
    "empty-blob": Case(UNSAFE, NOT_A_TAR, lambda c: b""),
    "not-a-tar-random": Case(UNSAFE, NOT_A_TAR, lambda c: random.Random(14).randbytes(8192)),
    "not-a-tar-zip": Case(UNSAFE, NOT_A_TAR, zipped),
    "not-a-tar-gzip": Case(
        UNSAFE, NOT_A_TAR, lambda c: gzip.compress(random.Random(14).randbytes(4096), mtime=0)
    ),
    "truncated-tar": Case(UNSAFE, NOT_A_TAR, truncated),
    "pickled-weights": Case(UNSAFE, "pickled weights", pickled),
    "auto-map": Case(UNLOADABLE, "auto_map", auto_map),
    "unknown-model-type": Case(
        UNLOADABLE,
        "model type 'no-such-model'",
        lambda c: archive(*model(c, {CONFIG: with_config(c, model_type="no-such-model")})),
    ),
    "config-over-bound": Case(
        UNLOADABLE,
        f"larger than {MAX_CONFIG_BYTES} bytes",
        lambda c: archive(*model(c, {CONFIG: with_config(c, pad="x" * MAX_CONFIG_BYTES)})),
    ),
    "huge-n-layer-empty-weights": Case(
        TOO_LARGE,
        "parameters",
        lambda c: archive(
            *model(
                c,
                {
                    CONFIG: json.dumps(
                        {**GPT2_SMALL, "n_layer": 48, "n_embd": 1600, "n_head": 25}
                    ).encode(),
                    WEIGHTS: b"",
                },
            )
        ),
    ),
    "124m-empty-weights": Case(
        UNLOADABLE,
        WEIGHTS,
        lambda c: archive(*model(c, {CONFIG: json.dumps(GPT2_SMALL).encode(), WEIGHTS: b""})),
    ),
    "not-a-model": Case(UNLOADABLE, CONFIG, lambda c: archive(regular("hello.txt", b"hello"))),
}


# What a refusal must leave


def outside_the_cache(c: Corpus) -> dict[str, tuple[object, ...]]:
    """Everything under the root but the cache: kind, size, links and content of each."""
    found: dict[str, tuple[object, ...]] = {}
    for directory, folders, files in os.walk(c.root):
        here = Path(directory)
        if here == c.root:
            folders.remove(c.cache.name)
        for name in folders + files:
            path = here / name
            status = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
            key = path.relative_to(c.root).as_posix()
            found[key] = (status.st_mode, status.st_size, status.st_nlink, digest)
    return found


def members_of(blob: bytes) -> set[str]:
    """The regular files a complete extraction of `blob` holds."""
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        return {PurePosixPath(m.name).as_posix() for m in tar if m.isreg()}


def files_under(directory: Path) -> set[str]:
    """The files of an extracted tree, relative to it."""
    return {
        (Path(root) / name).relative_to(directory).as_posix()
        for root, _, files in os.walk(directory)
        for name in files
    }


def assert_cache_whole(c: Corpus) -> None:
    """The cache holds complete extractions of published blobs and their lease and lock files:
    no staging or evicted leftovers, nothing that escaped a staging directory."""
    for name in os.listdir(c.cache):
        lease = re.fullmatch(r"\.([0-9a-f]{64})\.(use|lock)", name)
        entry = lease.group(1) if lease else name
        assert entry in c.published, name
        if not lease:
            assert files_under(c.cache / name) == members_of(c.published[name])


def assert_refused(c: Corpus, run_id: str, code: str, says: str) -> None:
    """`/generate` with `run_id` answers a 502 `code` in the one JSON shape with its request id,
    saying why, naming no path of this host."""
    answer = c.service.client.post("/generate", json={"run_id": run_id, "prompt": "The"})
    assert answer.status_code == 502, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["code"] == code, body
    assert body["request_id"] == answer.headers["X-Request-ID"]
    assert says in body["message"], body
    hidden = [str(c.root), str(c.bank_dir), os.getcwd(), sys.prefix, "/tmp/", "site-packages"]
    assert [path for path in hidden if path in answer.text] == [], body


def assert_serves(c: Corpus) -> None:
    """The good model still answers."""
    assert c.service.generate(run_id="good", prompt="The", max_new_tokens=2).run_id == "good"


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_hostile_archive_is_refused_and_the_service_serves_on(corpus: Corpus, case: str) -> None:
    refused = REFUSED[case]
    blob = refused.build(corpus)
    assert len(blob) < 4 * 2**20
    before = outside_the_cache(corpus)
    file_id = corpus.publish(case, blob)

    assert_refused(corpus, case, refused.code, refused.says)
    assert outside_the_cache(corpus) == before
    assert not corpus.marker.exists()
    assert_cache_whole(corpus)
    if refused.code == UNSAFE:
        assert file_id not in os.listdir(corpus.cache)
    assert_serves(corpus)


def test_a_tar_of_dot_is_served(corpus: Corpus, model_dir: Path) -> None:
    """What `tar -C dir -cf x.tar .` makes: the member `.`, then `./...` members."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(model_dir, arcname=".")
    blob = buffer.getvalue()
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        names = tar.getnames()
    assert names[0] == "."
    assert all(name.startswith("./") for name in names[1:])
    before = outside_the_cache(corpus)
    file_id = corpus.publish("dot", blob)

    answer = corpus.service.generate(run_id="dot", prompt="The", max_new_tokens=2)

    assert (answer.run_id, answer.file_id) == ("dot", file_id)
    assert outside_the_cache(corpus) == before
    assert_cache_whole(corpus)
    assert files_under(corpus.cache / file_id) == set(corpus.good)
    assert_serves(corpus)
