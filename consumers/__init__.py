"""The stage workers: training, tokenizer and upload stages of one node, and the `Worker`."""

from consumers.config import WorkerConfig
from consumers.dead_letters import Revivals
from consumers.layout import ArtifactsLayout
from consumers.manifest import Manifest
from consumers.tokenizer_stage import TokenizerStage
from consumers.trainer import CancelRequested, Progress, train_model
from consumers.training_stage import TrainingStage
from consumers.upload_stage import UploadStage
from consumers.uploader import ArtifactUploader, Receipt
from consumers.worker import DataBank, Worker, WorkerFailed

__all__ = [
    "ArtifactUploader",
    "ArtifactsLayout",
    "CancelRequested",
    "DataBank",
    "Manifest",
    "Progress",
    "Receipt",
    "Revivals",
    "TokenizerStage",
    "TrainingStage",
    "UploadStage",
    "Worker",
    "WorkerConfig",
    "WorkerFailed",
    "train_model",
]
