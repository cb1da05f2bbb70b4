"""Documents derived from the mapping declarations: the CapabilityStatement (and, later,
the SMART configuration). Nothing here is written by hand per resource type.
"""

from capability.statement import capability_statement, support_matrix

__all__ = ["capability_statement", "support_matrix"]
