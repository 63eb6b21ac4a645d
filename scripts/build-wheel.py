#!/usr/bin/env python3
"""Writes the wheel of a pure-Python project (packages/sdk-python) without a build backend:
`build-wheel.py <project dir> <out dir>`. Reads name, version, description, requires-python and
dependencies from pyproject.toml and packs the packages named in [tool.setuptools] packages, with
their *.py files and py.typed. Nothing is written into the project directory."""
import base64
import hashlib
import os
import sys
import tomllib
import zipfile


def main() -> None:
    project, out = sys.argv[1], sys.argv[2]
    with open(os.path.join(project, "pyproject.toml"), "rb") as f:
        meta = tomllib.load(f)
    p = meta["project"]
    dist = p["name"].replace("-", "_")
    info = f"{dist}-{p['version']}.dist-info"
    files = {}
    for pkg in meta["tool"]["setuptools"]["packages"]:
        for name in sorted(os.listdir(os.path.join(project, pkg))):
            if name.endswith(".py") or name == "py.typed":
                with open(os.path.join(project, pkg, name), "rb") as f:
                    files[f"{pkg}/{name}"] = f.read()
    readme = ""
    if p.get("readme"):
        with open(os.path.join(project, p["readme"]), encoding="utf-8") as f:
            readme = f.read()
    lines = ["Metadata-Version: 2.1", f"Name: {p['name']}", f"Version: {p['version']}", f"Summary: {p.get('description', '')}"]
    if p.get("requires-python"):
        lines.append(f"Requires-Python: {p['requires-python']}")
    if isinstance(p.get("license"), dict) and p["license"].get("text"):
        lines.append(f"License: {p['license']['text']}")
    lines += [f"Requires-Dist: {d}" for d in p.get("dependencies", [])]
    lines += [f"Classifier: {c}" for c in p.get("classifiers", [])]
    if readme:
        lines += ["Description-Content-Type: text/markdown", "", readme]
    files[f"{info}/METADATA"] = ("\n".join(lines) + "\n").encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: mags build-wheel.py\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{info}/top_level.txt"] = ("\n".join(meta["tool"]["setuptools"]["packages"]) + "\n").encode()
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    target = os.path.join(out, f"{dist}-{p['version']}-py3-none-any.whl")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files.items():
            z.writestr(zipfile.ZipInfo(path, date_time=(2026, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    print(target)


if __name__ == "__main__":
    main()
