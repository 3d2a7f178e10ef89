"""One JSON error shape: our errors, every validation failure, Starlette's HTTP errors."""

from __future__ import annotations

from httpservice import ErrorBody, FieldError, ServiceError, error_response
from httpservice.errors import field_errors, summary
from tests.httpservice.tinyapp import build_app, client


def test_a_service_error_keeps_its_status_code_and_headers() -> None:
    answer = client(build_app()).get("/refused", headers={"X-Request-ID": "r-1"})
    assert answer.status_code == 409
    assert answer.headers["retry-after"] == "1"
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"code": "CONFLICT", "message": "no", "request_id": "r-1", "errors": []}


def test_a_subclass_fixes_status_and_code() -> None:
    answer = client(build_app()).get("/teapot")
    assert (answer.status_code, answer.json()["code"]) == (418, "TEAPOT")
    assert answer.json()["message"] == "short and stout"


def test_every_validation_failure_is_listed() -> None:
    answer = client(build_app()).post("/orders", json={"item": "", "count": 0, "note": 3})
    assert answer.status_code == 422
    body = ErrorBody.model_validate(answer.json())
    assert body.code == "VALIDATION_ERROR"
    assert [error.field for error in body.errors] == ["body.item", "body.count", "body.note"]
    assert body.message.startswith("body.item: String should have at least 1 character; ")
    assert body.request_id == answer.headers["x-request-id"]


def test_a_service_chooses_its_validation_status_and_code() -> None:
    app = build_app(validation_status=400, validation_code="INVALID_INPUT")
    answer = client(app).post("/orders", content=b"not json")
    assert (answer.status_code, answer.json()["code"]) == (400, "INVALID_INPUT")
    assert answer.json()["errors"][0]["field"] == "body"


def test_legacy_turns_a_known_failure_into_a_pointed_error() -> None:
    def legacy(errors: list[FieldError]) -> ServiceError | None:
        if any(error.field == "body.note" for error in errors):
            return ServiceError(422, "NOTE_REMOVED", "notes are gone", errors=errors)
        return None

    api = client(build_app(legacy=legacy))
    pointed = api.post("/orders", json={"item": "a", "count": 1, "note": 1})
    assert pointed.json()["code"] == "NOTE_REMOVED"
    assert pointed.json()["errors"] == [
        {"field": "body.note", "message": "Input should be a valid string"}
    ]
    plain = api.post("/orders", json={"item": "a", "count": 0})
    assert plain.json()["code"] == "VALIDATION_ERROR"


def test_http_errors_get_upper_snake_codes() -> None:
    api = client(build_app())
    missing = api.get("/nowhere")
    assert missing.status_code == 404
    assert missing.json() == {
        "code": "NOT_FOUND",
        "message": "GET /nowhere: Not Found",
        "request_id": missing.headers["x-request-id"],
        "errors": [],
    }
    wrong = api.delete("/orders")
    assert (wrong.status_code, wrong.json()["code"]) == (405, "METHOD_NOT_ALLOWED")
    assert wrong.headers["allow"] == "POST"
    gone = api.get("/gone")
    assert (gone.status_code, gone.json()["code"]) == (410, "HTTP_410")
    assert gone.json()["message"] == "GET /gone: gone for good"


def test_field_errors_skip_odd_entries_and_name_the_request() -> None:
    assert field_errors([1, {"loc": (), "msg": "bad"}, {"loc": ("query", "n", 0)}]) == [
        FieldError(field="request", message="bad"),
        FieldError(field="query.n.0", message="None"),
    ]


def test_the_summary_counts_what_it_leaves_out() -> None:
    errors = [FieldError(field=f"body.f{i}", message="missing") for i in range(7)]
    line = summary(errors)
    assert line.endswith("body.f4: missing (+2 more)")
    assert line.count(";") == 4
    assert summary([]) == "invalid request"


def test_error_response_outside_a_request() -> None:
    response = error_response(503, "DOWN", "try later", None, {"Retry-After": "2"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert ErrorBody.model_validate_json(bytes(response.body)).request_id is None
