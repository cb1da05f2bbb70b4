"""facade: a US Core 6.1.0 FHIR server in front of EHR APIs that do not speak FHIR."""

__version__ = "0.1.0"
