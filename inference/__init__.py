"""The inference service: resolves `name@alias` or `run_id -> file_id -> model`, and serves
text generation (batched, streamed on request) and scoring.

- `requests`: what the service accepts and answers;
- `resolution`: request -> run -> artifact, and why there is none;
- `admission`: an artifact's model size and weights checked before it is built; `loading`:
  models in memory (LRU, single-flight loads); `serving`: fetch, hold and load;
- `generation` (`Generator`), `batching`, `decoding`, `completion`: batched, seeded generation
  with stop sequences and streamed text; `scoring`: per-token surprisal;
- `service` (`create_app`), `streaming` (SSE), `health`, `metrics`, `errors`.
"""

from inference.generation import Generation, Generator, GeneratorStats
from inference.loading import Loaded, load_model
from inference.requests import GenerateRequest, GenerateResponse, ScoreRequest, ScoreResponse
from inference.service import create_app

__all__ = [
    "GenerateRequest",
    "GenerateResponse",
    "Generation",
    "Generator",
    "GeneratorStats",
    "Loaded",
    "ScoreRequest",
    "ScoreResponse",
    "create_app",
    "load_model",
]
