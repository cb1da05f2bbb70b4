"""Each served profile's must-support elements, slices and extensions appear in the
sandbox's resources, as certification testing (uscore_6_1_0.json in ../shared) requires."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from facade.core.compartment import CompartmentMapping
from mappings.drchrono import REGISTRY
from tests.chart import every_resource
from tests.conftest import all_pages


def values_at(resources: list[dict[str, Any]], path: str) -> list[Any]:
    current: list[Any] = list(resources)
    for segment in path.split("."):
        following: list[Any] = []
        for node in current:
            if isinstance(node, dict) and segment in node:
                value = node[segment]
                following.extend(value if isinstance(value, list) else [value])
        current = following
    return [v for v in current if v not in (None, "", [], {})]


def present(resources: list[dict[str, Any]], element: dict[str, Any]) -> bool:
    found = values_at(resources, element["path"])
    if "fixed_value" in element:
        return element["fixed_value"] in found
    return bool(found)


def missing_must_support(profile: dict[str, Any], resources: list[dict[str, Any]]) -> list[str]:
    support = profile["must_support"]
    choice_paths = {p for choice in support.get("choices", []) for p in choice["paths"]}
    missing = [
        e["path"] + (f"={e['fixed_value']}" if "fixed_value" in e else "")
        for e in support["elements"]
        if e["path"] not in choice_paths and not present(resources, e)
    ]
    for choice in support.get("choices", []):
        if not any(values_at(resources, p) for p in choice["paths"]):
            missing.append(" | ".join(choice["paths"]))
    for extension in support.get("extensions", []):
        urls = {e.get("url") for r in resources for e in r.get("extension", [])}
        if extension["url"] not in urls:
            missing.append(extension["id"])
    for slice_ in support.get("slices", []):
        system = slice_["discriminator"].get("system")
        if system and not any(
            v.get("system") == system for v in values_at(resources, slice_["path"])
        ):
            missing.append(slice_["slice_id"])
    return missing


def profile_requirements(shared_dir: Path, profile_url: str) -> dict[str, Any]:
    """The certification notes' must-support list; for a profile they do not cover
    (Location, which g10 does not test), the StructureDefinition's mustSupport elements."""
    spec = json.loads((shared_dir / "research" / "us-core-6.1.0" / "uscore_6_1_0.json").read_text())
    for profile in spec["profiles"]:
        if profile["profile_url"] == profile_url:
            return dict(profile)
    name = profile_url.rsplit("/", 1)[-1]
    definition = json.loads(
        (shared_dir / "fhir" / "us-core-6.1.0" / f"StructureDefinition-{name}.json").read_text()
    )
    elements = [
        {"path": e["id"].split(".", 1)[1]}
        for e in definition["snapshot"]["element"]
        if e.get("mustSupport") and "." in e["id"] and ":" not in e["id"]
    ]
    return {"must_support": {"elements": elements, "slices": [], "extensions": [], "choices": []}}


SERVED_PROFILES = [
    (mapping.resource_type, profile)
    for mapping in REGISTRY
    for profile in (
        mapping.profiles if isinstance(mapping, CompartmentMapping) else (mapping.profile,)
    )
]


@pytest.mark.parametrize(
    "resource_type,profile_url",
    SERVED_PROFILES,
    ids=[profile.rsplit("/", 1)[1] for _, profile in SERVED_PROFILES],
)
async def test_must_support_elements_appear_in_the_sandbox(
    sandbox_fhir: httpx.AsyncClient, shared_dir: Path, resource_type: str, profile_url: str
) -> None:
    requirements = profile_requirements(shared_dir, profile_url)
    patients = [r["id"] for r in await all_pages(sandbox_fhir, "/fhir/Patient?_count=250")]
    resources = [
        r
        for r in await every_resource(sandbox_fhir, resource_type, patients)
        if profile_url in r.get("meta", {}).get("profile", [])
    ]
    assert resources, f"the sandbox yields no {profile_url.rsplit('/', 1)[1]} resource"
    assert missing_must_support(requirements, resources) == []
