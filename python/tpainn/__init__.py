"""T-PaiNN: PaiNN potentials pretrained on classical force fields and autotuned on small DFT sets."""

from tpainn._extension import check_extension

check_extension()

from tpainn.model import PaiNN  # noqa: E402
from tpainn.neighbors import neighbor_list  # noqa: E402

__version__ = "0.1.0"
__all__ = ["PaiNN", "neighbor_list", "__version__"]
