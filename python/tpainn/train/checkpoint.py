"""Checkpoints and model files, written atomically (temp file + rename) so a kill never corrupts them.

Two kinds of file, both plain `torch.save` dicts loadable with `weights_only=True`:
- the training checkpoint (`checkpoint.pt`): everything needed to resume exactly;
- the model file (`model.pt`): format tag, hyperparameters, weights (the best EMA weights) and provenance.
"""

import zipfile
from pathlib import Path
from typing import Any, Dict, Union

import torch

from tpainn.files import replacing
from tpainn.model import PaiNN

MODEL_FORMAT = "tpainn-model"
CHECKPOINT_FORMAT = "tpainn-checkpoint"


def save_atomic(obj: Dict[str, Any], path: Union[str, Path]) -> None:
    with replacing(path) as partial:
        torch.save(obj, partial)


def _load(path: Union[str, Path], *formats: str) -> Dict[str, Any]:
    path = Path(path)
    wanted = " or ".join(formats)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (expected a {wanted} file)")
    if _is_torchscript(path):
        raise ValueError(
            f"{path} is an exported model (TorchScript, from `tpainn export`), which runs in ASE and LAMMPS but cannot "
            "be trained, evaluated or exported again: pass the model.pt or checkpoint.pt of the training run it was "
            "exported from"
        )
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        reason = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
        raise ValueError(f"{path} is not a readable {wanted} file ({reason})") from err
    if not isinstance(content, dict) or content.get("format") not in formats:
        raise ValueError(f"{path} is not a {wanted} file")
    return content


def _is_torchscript(path: Path) -> bool:
    """Whether `path` is a TorchScript archive (a zip holding compiled code), as `tpainn export` writes."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("constants.pkl") or "/code/" in name for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def load_checkpoint(path: Union[str, Path]) -> Dict[str, Any]:
    return _load(path, CHECKPOINT_FORMAT)


def model_file(model: PaiNN, provenance: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "format": MODEL_FORMAT,
        "hyperparameters": model.hyperparameters,
        # Extra training heads (multi-head replay) are not part of the trained potential.
        "state_dict": {k: v for k, v in model.state_dict().items() if not k.startswith("heads.")},
        "provenance": provenance,
    }


def load_trained(path: Union[str, Path]) -> PaiNN:
    """A trained model from a model file (`model.pt`) or a training checkpoint (its best weights)."""
    content = _load(path, MODEL_FORMAT, CHECKPOINT_FORMAT)
    if content["format"] == CHECKPOINT_FORMAT:
        content = content["best_model"]
    model = PaiNN.from_hyperparameters(content["hyperparameters"])
    model.load_state_dict(content["state_dict"])
    model.provenance = content["provenance"]
    return model.eval()
