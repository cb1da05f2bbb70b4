"""Each served profile's must-support elements, slices and extensions appear in the
sandbox's resources, as certification testing (uscore_6_1_0.json in ../shared) requires,
for every vendor: save the elements its registry declares it has no source for
(`must_support_gaps`, each with its reason), which must be missing and nothing else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from facade.core.compartment import CompartmentMapping
from tests.chart import every_resource
from tests.conftest import all_pages
from tests.vendors import per_vendor, registry


def _children(node: Any, name: str) -> list[Any]:
    """The values of element `name` in `node`; `x[x]` matches any `x<Type>` choice."""
    if not isinstance(node, dict):
        return []
    if name.endswith("[x]"):
        stem = name[:-3]
        keys = [k for k in node if k.startswith(stem) and k[len(stem) : len(stem) + 1].isupper()]
    else:
        keys = [name] if name in node else []
    found: list[Any] = []
    for key in keys:
        value = node[key]
        found.extend(value if isinstance(value, list) else [value])
    return found


def in_slice(value: Any, discriminator: dict[str, Any], key: str = "") -> bool:
    """Whether an entry belongs to a slice, by the slice's discriminator."""
    kind = discriminator.get("type")
    if kind in ("patternCodeableConcept", "patternCoding"):
        node = value
        for step in filter(None, str(discriminator.get("path", "")).split(".")):
            node = node.get(step) if isinstance(node, dict) else None
        codings = (node.get("coding") or [node]) if isinstance(node, dict) else []
        return any(
            c.get("system") == discriminator.get("system")
            and c.get("code") == discriminator.get("code")
            for c in codings
            if isinstance(c, dict)
        )
    if kind == "patternIdentifier":
        return isinstance(value, dict) and value.get("system") == discriminator.get("system")
    if kind == "value":
        return all(
            expected["value"] in values_at([value], expected["path"])
            for expected in discriminator.get("values", [])
        )
    if kind == "type":
        return key.endswith(str(discriminator.get("code")))
    return True  # requiredBinding: not checkable offline; any entry counts


def values_at(
    resources: list[dict[str, Any]], path: str, slices: dict[str, dict[str, Any]] | None = None
) -> list[Any]:
    """Values at a must-support path; `name:slice` keeps only the slice's entries."""
    current: list[Any] = list(resources)
    for segment in path.split("."):
        name, _, slice_name = segment.partition(":")
        following: list[Any] = []
        for node in current:
            if slice_name and slices and slice_name in slices:
                discriminator = slices[slice_name]["discriminator"]
                if discriminator.get("type") == "type" and isinstance(node, dict):
                    stem = name[:-3] if name.endswith("[x]") else name
                    following += [
                        v
                        for k, v in node.items()
                        if k.startswith(stem) and in_slice(v, discriminator, k)
                    ]
                    continue
                following += [v for v in _children(node, name) if in_slice(v, discriminator)]
            else:
                following += _children(node, name)
        current = following
    return [v for v in current if v not in (None, "", [], {})]


def present(
    resources: list[dict[str, Any]], element: dict[str, Any], slices: dict[str, dict[str, Any]]
) -> bool:
    found = values_at(resources, element["path"], slices)
    if "fixed_value" in element:
        return element["fixed_value"] in found
    return bool(found)


def missing_must_support(profile: dict[str, Any], resources: list[dict[str, Any]]) -> list[str]:
    """Every must-support element, choice, extension and slice none of `resources` has."""
    support = profile["must_support"]
    slices = {s["slice_name"]: s for s in support.get("slices", [])}
    # Choices between element paths; a choice between reference target profiles only (no
    # paths) is met by the element itself, which is checked as an element.
    choices = [c for c in support.get("choices", []) if c.get("paths")]
    choice_paths = {p for choice in choices for p in choice["paths"]}
    missing = [
        e["path"] + (f"={e['fixed_value']}" if "fixed_value" in e else "")
        for e in support["elements"]
        if e["path"] not in choice_paths and not present(resources, e, slices)
    ]
    for choice in choices:
        if not any(values_at(resources, p, slices) for p in choice["paths"]):
            missing.append(" | ".join(choice["paths"]))
    for extension in support.get("extensions", []):
        urls = {e.get("url") for r in resources for e in r.get("extension", [])}
        if extension["url"] not in urls:
            missing.append(extension["id"])
    for slice_ in support.get("slices", []):
        path = slice_["path"]
        discriminator = slice_["discriminator"]
        if discriminator.get("type") == "type":
            found = values_at(resources, f"{path}:{slice_['slice_name']}", slices)
        else:
            found = [v for v in values_at(resources, path) if in_slice(v, discriminator)]
        if not found:
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


def served_profiles(vendor_name: str) -> list[tuple[str, str]]:
    return [
        (mapping.resource_type, profile)
        for mapping in registry(vendor_name)
        for profile in (
            mapping.profiles if isinstance(mapping, CompartmentMapping) else (mapping.profile,)
        )
    ]


@per_vendor(
    "resource_type,profile_url", served_profiles, ids=lambda _type, url: url.rsplit("/", 1)[1]
)
async def test_must_support_elements_appear_in_the_sandbox(
    sandbox_fhir: httpx.AsyncClient,
    shared_dir: Path,
    vendor_name: str,
    resource_type: str,
    profile_url: str,
) -> None:
    requirements = profile_requirements(shared_dir, profile_url)
    patients = [r["id"] for r in await all_pages(sandbox_fhir, "/fhir/Patient?_count=250")]
    resources = [
        r
        for r in await every_resource(sandbox_fhir, resource_type, patients)
        if profile_url in r.get("meta", {}).get("profile", [])
    ]
    name = profile_url.rsplit("/", 1)[1]
    assert resources, f"the sandbox yields no {name} resource"
    missing = missing_must_support(requirements, resources)
    excused = registry(vendor_name).must_support_gaps.get(name, {})
    assert [m for m in missing if m not in excused] == []
    stale = [element for element in excused if element not in missing]
    assert stale == [], f"listed as having no vendor source, yet the sandbox yields {stale}"
