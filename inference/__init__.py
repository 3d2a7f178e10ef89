"""The inference service: resolves `run_id -> file_id -> model` and serves text generation."""

from inference.generation import GenerateRequest, Generator
from inference.service import GenerateResponse, create_app

__all__ = ["GenerateRequest", "GenerateResponse", "Generator", "create_app"]
