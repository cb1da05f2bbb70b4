"""Runs the README's shell walkthroughs as written, so a newcomer who follows them literally
gets what they promise.

A section's ```sh blocks run in one bash process (`set -euo pipefail`, so a failed curl or
a jq that finds nothing fails the test) in a scratch directory that holds a `.venv` link to
this checkout's, as a clone would. A line that starts the server (`./scripts/serve.sh …`,
`facade serve …`) is started here instead, on a free loopback port, and the `# …` lines
right after it are output it must print. Port 8080 in the text becomes the free port (and
a test may map another, such as an app's redirect port); no other word of the README is
changed.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.test_cli import Running, clean_env, free_port, wait_until_listening

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_PORT = "8080"
_SERVER_LINE = re.compile(r"^(?:\./scripts/serve\.sh|(?:\.venv/bin/)?facade serve)\b(?P<args>.*)$")
_FENCE = re.compile(r"^```sh\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)


def section(heading: str, text: str | None = None) -> str:
    """The README's text under `heading` (any level), up to the next heading of the same
    or a higher level (`#` lines inside fenced blocks are shell comments, not headings)."""
    lines = (README.read_text() if text is None else text).splitlines(keepends=True)
    level = 0
    fenced = False
    taken: list[str] = []
    for line in lines:
        if line.startswith("```"):
            fenced = not fenced
        hashes = len(line) - len(line.lstrip("#"))
        is_heading = not fenced and hashes and line[hashes : hashes + 1] == " "
        if level and is_heading and hashes <= level:
            break
        if level:
            taken.append(line)
        elif is_heading and line[hashes + 1 :].rstrip("\n") == heading:
            level = hashes
    if not level:
        raise LookupError(f"README has no section {heading!r}")
    return "".join(taken)


def shell_blocks(text: str) -> list[str]:
    return [m.group("body") for m in _FENCE.finditer(text)]


@dataclass
class Walkthrough:
    """A section split into what starts the server and the script that follows."""

    server_args: list[str] | None = None
    expected_output: list[str] = field(default_factory=list)
    script: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, heading: str) -> Walkthrough:
        walk = cls()
        for block in shell_blocks(section(heading)):
            lines = block.splitlines()
            index = 0
            while index < len(lines):
                server = _SERVER_LINE.match(lines[index].strip())
                if server is None:
                    walk.script.append(lines[index])
                    index += 1
                    continue
                walk.server_args = server.group("args").split("#", 1)[0].split()
                index += 1
                while index < len(lines) and lines[index].startswith("# "):
                    walk.expected_output.append(lines[index][2:])
                    index += 1
        return walk


class Scratch:
    """A directory laid out like a fresh clone for the README's relative paths."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        #: Other ports of the README's text and the ones they become here (an app's redirect).
        self.ports = {README_PORT: str(self.port)}
        (directory / ".venv").symlink_to(ROOT / ".venv")
        self.server: Running | None = None

    def localized(self, text: str) -> str:
        for written, used in self.ports.items():
            text = text.replace(f":{written}", f":{used}").replace(f"%3A{written}", f"%3A{used}")
        return text

    def serve(self, args: list[str], expected_output: tuple[str, ...] = ()) -> Running:
        """`facade serve ARGS` in the scratch directory on the free port; checks that it
        prints `expected_output` (with the port localised) and listens."""
        self.server = Running(
            ["serve", *args, "--port", str(self.port)], clean_env(), cwd=self.directory
        )
        for line in expected_output:
            self.server.wait_for(re.escape(self.localized(line)))
        wait_until_listening(self.port, self.server)
        return self.server

    def run(self, script: list[str], timeout: float = 240.0) -> subprocess.CompletedProcess[str]:
        body = self.localized("\n".join(script))
        return subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + body],
            cwd=self.directory,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
