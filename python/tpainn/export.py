"""TorchScript export of a trained model, with the metadata that makes the file self-contained.

An exported file is `torch.jit.save` of the scripted `PaiNN` plus two extra files: `tpainn_format`
("tpainn-exported-model 4", the format tag and version that `load_exported` below and the C++ engine
(csrc/engine.cpp: ASE calculator, LAMMPS) check) and `tpainn_metadata.json` (species, cutoff, interaction
layers, units, network dtype, the D3 dispersion to add back, the tpainn operators the file calls, versions and
the training provenance, for people and tools; the engine reads what it needs from the scripted model's own
attributes; pair_style tpainn reads `dispersion` from the JSON). Fused exports
(the default) run each message block as one C++ operator (tpainn.model.fused), registered by tpainn._C and by
the C++ engine; TorchScript loaders without tpainn cannot run them (export with fused=False for those).
Fused exports also exchange the features of ghost atoms between layers (tpainn::ghost_exchange), which the
engine's domain-decomposed path needs (pair_style tpainn on several MPI ranks); unfused ones run in one piece.
Units: positions and cell Å, energies eV, forces eV/Å, virial eV, stress eV/Å³.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Union

import torch
from ase.data import atomic_numbers

from tpainn._extension import load_extension
from tpainn.files import replacing
from tpainn.model import PaiNN
from tpainn.model.fused import OPERATORS as FUSED_OPERATORS
from tpainn.model.fused import fuse

EXPORT_FORMAT = "tpainn-exported-model"
# Bump when the file layout or the forward signature changes; csrc/engine.cpp checks the same number.
# 2: the representation's steps (edge_features, embed, first_messages, node_messages, interact) and the model's
# species_of / atom_energies are methods of the file, which the engine runs layer by layer on several MPI ranks.
# 3: the short-range repulsion (model/repulsion.py), a method of the file (repulsion_energies) the engine adds.
# 4: forward is the only entry point, also for the engine's domain-decomposed path (forward's n_owned): the exchange
# of ghost features between layers is a step of the model (tpainn::ghost_exchange in fused exports).
FORMAT_VERSION = 4
METADATA_FILE = "tpainn_metadata.json"
# "<format tag> <format version>": what the C++ engine checks (it reads species, cutoff and layers from the
# scripted model's attributes and passes the JSON metadata through unparsed).
FORMAT_FILE = "tpainn_format"
UNITS = {"energy": "eV", "length": "Å", "forces": "eV/Å", "virial": "eV", "stress": "eV/Å^3"}


def export_metadata(model: PaiNN, fused: bool) -> Dict[str, Any]:
    from tpainn import __version__

    hyperparameters = model.hyperparameters
    return {
        "format": EXPORT_FORMAT,
        "format_version": FORMAT_VERSION,
        "species": list(model.species),
        "atomic_numbers": [atomic_numbers[s] for s in model.species],
        "cutoff": model.cutoff,
        "n_interactions": model.n_interactions,
        "receptive_field": model.cutoff * model.n_interactions,
        "repulsion": model.repulsion.describe(model.species),
        # D3 the model was trained without (tpainn/dispersion.py): ASE and LAMMPS add it back, and pair_style
        # tpainn refuses to run without it. Files exported before this key existed read as "none".
        "dispersion": hyperparameters.get("dispersion", "none"),
        "units": UNITS,
        "dtype": hyperparameters["dtype"],
        "fused_operators": list(FUSED_OPERATORS) if fused else [],
        "hyperparameters": hyperparameters,
        "tpainn_version": __version__,
        "torch_version": torch.__version__,
        "provenance": getattr(model, "provenance", {}),
    }


def export_model(model: Union[PaiNN, str, Path], output: Union[str, Path], fused: bool = True) -> Path:
    """Script ``model`` (a PaiNN, or a model.pt / checkpoint.pt path) and save it with its metadata.

    fused: run the message blocks as tpainn's fused operator (same function, several times faster in MD;
    needs tpainn's C++ extension or engine to load). The file is written atomically (temporary file + rename).
    """
    if not Path(output).parent.is_dir():
        raise FileNotFoundError(f"{Path(output).parent}: the output folder does not exist")
    if Path(output).is_dir():
        raise IsADirectoryError(f"{output}: is a folder; give the file to write, e.g. {Path(output) / 'model-exported.pt'}")
    if not isinstance(model, PaiNN):
        from tpainn.train import load_trained

        model = load_trained(model)
    metadata = export_metadata(model, fused)
    # Scripting a copy leaves the caller's model (possibly in training mode) untouched.
    scripted = torch.jit.script((fuse(model) if fused else copy.deepcopy(model)).eval())
    output = Path(output)
    # default=str: provenance may hold paths; the metadata must never make an export fail.
    extra_files = {
        METADATA_FILE: json.dumps(metadata, indent=1, default=str),
        FORMAT_FILE: f"{EXPORT_FORMAT} {FORMAT_VERSION}",
    }
    with replacing(output) as partial:
        torch.jit.save(scripted, str(partial), _extra_files=extra_files)
    return output


@dataclass
class ExportedModel:
    """An exported model loaded in Python: the TorchScript module (PaiNN.forward) and its metadata."""

    module: torch.jit.ScriptModule
    metadata: Dict[str, Any]
    path: Path

    @property
    def species(self) -> list:
        return self.metadata["species"]

    @property
    def cutoff(self) -> float:
        return self.metadata["cutoff"]


def load_exported(path: Union[str, Path], device: str = "cpu") -> ExportedModel:
    """Load an exported T-PaiNN model (`tpainn export`) and check its format, as the C++ engine does.

    Not to be confused with `tpainn.train.load_trained`, which loads the training outputs (model.pt,
    checkpoint.pt) as an eager `PaiNN` for further training or evaluation.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (expected a T-PaiNN model exported with `tpainn export`)")
    try:
        load_extension()  # registers the operators that fused exports call
        extension_error = ""
    except ImportError as err:  # unfused exports load without it
        extension_error = f" ({err})"
    extra = {FORMAT_FILE: "", METADATA_FILE: ""}
    try:
        module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
    except RuntimeError as err:
        missing_operator = re.search(r"Unknown builtin op: (tpainn::\w+)", str(err))
        if missing_operator:
            raise ValueError(
                f"{path} is a fused T-PaiNN export: it calls {missing_operator[1]}, which is not registered in this "
                f"process{extension_error}. Install tpainn with its C++ extension, or export the model again with "
                "fused=False"
            ) from err
        raise ValueError(
            f"{path} is not a TorchScript file (training outputs are converted with `tpainn export MODEL -o OUT.pt`): "
            f"{str(err).splitlines()[0]}"
        ) from err
    # torch.jit.load returns the extra files as bytes.
    format_text = bytes(extra[FORMAT_FILE]).decode()
    if not format_text:
        raise ValueError(f"{path} is a TorchScript file but not a T-PaiNN model (it has no {FORMAT_FILE})")
    tag, _, version = format_text.partition(" ")
    if tag != EXPORT_FORMAT:
        raise ValueError(f"{path} is not a T-PaiNN model (format {format_text!r})")
    if version != str(FORMAT_VERSION):
        raise ValueError(
            f"{path} has export format version {version}, but this tpainn reads version {FORMAT_VERSION}: "
            "export the model again with this version"
        )
    metadata = json.loads(extra[METADATA_FILE])
    metadata.setdefault("dispersion", "none")
    return ExportedModel(module.eval(), metadata, path)
