"""The PaiNN model: radial basis, representation (message passing) and the potential."""

from tpainn.model.potential import PaiNN

__all__ = ["PaiNN"]
