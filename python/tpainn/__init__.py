"""T-PaiNN: PaiNN potentials pretrained on classical force fields and autotuned on small DFT sets."""

from tpainn._extension import check_extension

check_extension()

__version__ = "0.1.0"

from tpainn.calculator import TPaiNNCalculator  # noqa: E402
from tpainn.export import export_model, load_model  # noqa: E402  (exported models; tpainn.train.load_model: training outputs)
from tpainn.model import PaiNN  # noqa: E402
from tpainn.neighbors import neighbor_list  # noqa: E402

__all__ = ["PaiNN", "TPaiNNCalculator", "export_model", "load_model", "neighbor_list", "__version__"]
