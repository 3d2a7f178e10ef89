"""`POST /generate` over a real read model, the local Data Bank and a tiny trained artifact."""

from __future__ import annotations

import io
import tarfile

import pytest
from transformers import GenerationMixin

from inference import GenerateRequest, GenerateResponse, Loaded
from inference.decoding import Row
from inference.requests import Usage
from tests.inference.conftest import Service, sse
from tests.projections.factories import run_events


def test_generates_from_a_run_and_names_what_it_used(
    service: Service, artifact: bytes, reference: Loaded
) -> None:
    file_id = service.publish("run-1", artifact)
    body = service.generate(run_id="run-1", prompt="The quick", max_new_tokens=5)
    assert (body.run_id, body.file_id, body.model) == ("run-1", file_id, None)
    assert body.texts == [body.text]
    assert body.text == "The quick" + body.completions[0]
    assert body.finish_reasons == ["length"]
    prompt_tokens = len(reference.tokenizer("The quick")["input_ids"])
    assert body.usage == Usage(prompt_tokens=prompt_tokens, generated_tokens=5)
    assert min(body.timings.model_dump().values()) >= 0
    assert body.timings.fetch_s > 0  # a first request: downloaded and extracted


def test_greedy_matches_transformers_generate(
    service: Service, artifact: bytes, reference: Loaded
) -> None:
    service.publish("run-1", artifact)
    body = service.generate(run_id="run-1", prompt="The river", max_new_tokens=12)
    inputs = reference.tokenizer("The river", return_tensors="pt")
    model = reference.model
    assert isinstance(model, GenerationMixin)
    output = model.generate(
        **inputs, max_new_tokens=12, do_sample=False, pad_token_id=reference.end_of_text
    )
    assert body.text == reference.tokenizer.decode(output[0], skip_special_tokens=True)


def test_a_fixed_seed_is_repeatable(service: Service, artifact: bytes) -> None:
    service.publish("run-1", artifact)
    asked = {"run_id": "run-1", "prompt": "A", "temperature": 0.9, "top_p": 0.9, "seed": 7}
    first = service.generate(**asked, max_new_tokens=20)
    again = service.generate(**asked, max_new_tokens=20)
    other = service.generate(**{**asked, "seed": 8}, max_new_tokens=20)
    assert again.texts == first.texts
    assert other.texts != first.texts


def test_several_sequences_sample_apart(service: Service, artifact: bytes) -> None:
    service.publish("run-1", artifact)
    asked = {"run_id": "run-1", "prompt": "A", "temperature": 1.0, "seed": 3, "max_new_tokens": 10}
    three = service.generate(**asked, num_return_sequences=3)
    one = service.generate(**asked)
    assert len(three.texts) == len(set(three.texts)) == 3
    assert three.text == three.texts[0] == one.text  # row 0 samples like a lone sequence
    assert three.usage == Usage(prompt_tokens=1, generated_tokens=30)


def test_stop_sequences_cut_the_text_at_the_first(service: Service, artifact: bytes) -> None:
    service.publish("run-1", artifact)
    asked = {"run_id": "run-1", "prompt": "The quick", "max_new_tokens": 12}
    free = service.generate(**asked).completions[0]
    stop = free[3:5]
    cut = free[: free.find(stop)]
    body = service.generate(**asked, stop=["never there", stop])
    assert body.completions == [cut]
    assert body.text == "The quick" + cut
    assert body.finish_reasons == ["stop"]
    assert body.usage.generated_tokens < 12


def test_streams_server_sent_events(service: Service, artifact: bytes) -> None:
    service.publish("run-1", artifact)
    asked = {"run_id": "run-1", "prompt": "The quick", "max_new_tokens": 10}
    plain = service.generate(**asked)
    with service.client.stream("POST", "/generate", json={**asked, "stream": True}) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        events = sse(answer.read().decode())
    tokens = [data for name, data in events if name == "token"]
    assert [name for name, _ in events] == ["token"] * len(tokens) + ["end"]
    assert len(tokens) > 1
    assert "".join(str(piece["text"]) for piece in tokens) == plain.completions[0]
    end = GenerateResponse.model_validate(events[-1][1])
    assert end.model_copy(update={"timings": plain.timings}) == plain


def test_streams_several_sequences_with_stops(service: Service, artifact: bytes) -> None:
    service.publish("run-1", artifact)
    asked = {
        "run_id": "run-1",
        "prompt": "The",
        "max_new_tokens": 20,
        "temperature": 1.2,
        "seed": 5,
        "num_return_sequences": 2,
        "stop": ["e", "th"],
    }
    plain = service.generate(**asked)
    events = sse(service.client.post("/generate", json={**asked, "stream": True}).text)
    for index in (0, 1):
        pieces = [str(d["text"]) for name, d in events if name == "token" and d["index"] == index]
        assert "".join(pieces) == plain.completions[index]
    assert events[-1][1]["texts"] == plain.texts


def test_a_request_names_one_model(service: Service) -> None:
    both = service.client.post("/generate", json={"run_id": "r", "model": "m@a", "prompt": "x"})
    neither = service.client.post("/generate", json={"prompt": "x"})
    for answer in (both, neither):
        assert answer.status_code == 422
        assert answer.json()["code"] == "VALIDATION_ERROR"
        assert "exactly one of run_id and model" in answer.json()["message"]
    bad = service.client.post("/generate", json={"model": "no-alias", "prompt": "x"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "body.model"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"num_return_sequences": 9, "temperature": 1}, "body.num_return_sequences"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "body.stop"),
        ({"stop": [""]}, "body.stop.0"),
        ({"stop": ["x" * 65]}, "body.stop.0"),
        ({"top_p": 0}, "body.top_p"),
    ],
)
def test_generate_options_are_bounded(
    service: Service, options: dict[str, object], field: str
) -> None:
    answer = service.client.post("/generate", json={"run_id": "r", "prompt": "x", **options})
    assert answer.status_code == 422
    assert [error["field"] for error in answer.json()["errors"]] == [field]


def test_several_sequences_need_sampling(service: Service) -> None:
    answer = service.client.post(
        "/generate", json={"run_id": "r", "prompt": "x", "num_return_sequences": 2}
    )
    assert answer.status_code == 422
    assert "needs sampling" in answer.json()["message"]


def test_bad_input_is_a_json_422_listing_every_failure(service: Service) -> None:
    answer = service.client.post("/generate", json={"run_id": "r", "prompt": "", "extra": 1})
    assert answer.status_code == 422
    body = answer.json()
    assert body["code"] == "VALIDATION_ERROR"
    assert [error["field"] for error in body["errors"]] == ["body.prompt", "body.extra"]
    assert body["request_id"] == answer.headers["x-request-id"]


def test_unknown_routes_are_json(service: Service) -> None:
    answer = service.client.get("/nowhere")
    assert answer.status_code == 404
    assert answer.json()["code"] == "NOT_FOUND"
    assert service.client.delete("/generate").json()["code"] == "METHOD_NOT_ALLOWED"


def test_an_unsafe_artifact_is_refused(service: Service) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.addfile(tarfile.TarInfo("pytorch_model.bin"), io.BytesIO(b""))
    service.publish("evil", buffer.getvalue())
    answer = service.client.post("/generate", json={"run_id": "evil", "prompt": "x"})
    assert answer.status_code == 502
    assert answer.json()["code"] == "UNSAFE_ARTIFACT"


def test_an_artifact_that_is_no_model_is_a_502(service: Service) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("README.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    service.publish("empty", buffer.getvalue())
    answer = service.client.post("/generate", json={"run_id": "empty", "prompt": "x"})
    assert answer.status_code == 502
    assert answer.json()["code"] == "UNLOADABLE_ARTIFACT"


def test_a_missing_file_in_data_bank_is_a_502(service: Service) -> None:
    make = run_events("lost", service.clock)
    service.project(make["training.requested"](), make["artifact.pointer_set"](file_id="f" * 64))
    answer = service.client.post("/generate", json={"run_id": "lost", "prompt": "x"})
    assert answer.status_code == 502
    assert answer.json()["code"] == "DATA_BANK_ERROR"


def test_a_prompt_longer_than_the_context_keeps_its_end(
    service: Service, artifact: bytes, reference: Loaded
) -> None:
    service.publish("run-1", artifact)
    prompt = " ".join(["the quick fox"] * 40) + " ends here"
    body = service.generate(run_id="run-1", prompt=prompt, max_new_tokens=500)
    assert "ends here" in body.text
    assert reference.context == 32  # the prompt keeps half of it, the rest is for new tokens
    assert body.usage == Usage(prompt_tokens=16, generated_tokens=16)
    assert body.finish_reasons == ["length"]


def test_the_request_model_is_importable() -> None:
    request = GenerateRequest(run_id="r", prompt="p")
    assert (request.max_new_tokens, request.top_p, request.stop) == (40, 1.0, [])


def test_a_stream_that_fails_ends_with_an_error_event(service: Service, artifact: bytes) -> None:
    service.publish("run-1", artifact)

    def broken(loaded: Loaded, rows: list[Row]) -> None:
        raise RuntimeError("the device fell over")

    service.generator.batcher.run = broken
    answer = service.client.post(
        "/generate",
        json={"run_id": "run-1", "prompt": "The", "stream": True},
        headers={"X-Request-ID": "s1"},
    )
    assert answer.status_code == 200
    assert sse(answer.text) == [
        (
            "error",
            {
                "code": "GENERATION_FAILED",
                "message": "the device fell over",
                "request_id": "s1",
                "errors": [],
            },
        )
    ]
