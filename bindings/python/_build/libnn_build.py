"""A PEP 517 build backend for the pure-Python libnn package, kept in the tree so that
`pip install bindings/python` works with no network: pip's isolated build environment
then needs nothing from an index (setuptools would have to be downloaded into it).

It builds a py3-none-any wheel of the `libnn` package directory (and any libnn.so*
or plugin copied into it) and a source tarball. The project's metadata is
[project] in pyproject.toml, read with tomllib where Python has it (3.11+) and with
the small reader below elsewhere.
"""
import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "libnn"


def _project():
    text = open(os.path.join(HERE, "pyproject.toml"), encoding="utf-8").read()
    try:
        import tomllib
        return tomllib.loads(text)["project"]
    except ImportError:  # Python < 3.11: the few flat keys this backend needs
        section = text.split("[project]", 1)[1].split("\n[", 1)[0]
        project = {}
        for key in ("name", "version", "description", "requires-python"):
            m = re.search(r'^%s\s*=\s*"([^"]*)"' % re.escape(key), section, re.M)
            if m:
                project[key] = m.group(1)
        m = re.search(r"^dependencies\s*=\s*\[(.*?)\]", section, re.M | re.S)
        project["dependencies"] = re.findall(r'"([^"]+)"', m.group(1)) if m else []
        return project


def _metadata():
    p = _project()
    lines = ["Metadata-Version: 2.1", "Name: %s" % p["name"], "Version: %s" % p["version"]]
    if p.get("description"):
        lines.append("Summary: %s" % p["description"])
    if p.get("requires-python"):
        lines.append("Requires-Python: %s" % p["requires-python"])
    lines += ["Requires-Dist: %s" % d for d in p.get("dependencies", [])]
    for extra, deps in sorted(p.get("optional-dependencies", {}).items()):
        lines.append("Provides-Extra: %s" % extra)
        lines += ['Requires-Dist: %s; extra == "%s"' % (d, extra) for d in deps]
    return p, "\n".join(lines) + "\n"


def _package_files():
    root = os.path.join(HERE, PACKAGE)
    for name in sorted(os.listdir(root)):
        if name.endswith(".py") or re.match(r"libnn(-backend-\w+)?\.so(\.\d+)*$", name):
            yield os.path.join(root, name), "%s/%s" % (PACKAGE, name)


def _record_line(arcname, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (arcname, digest, len(data))


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def _wheel(wheel_directory, editable):
    project, metadata = _metadata()
    dist = "%s-%s" % (project["name"], project["version"])
    info = dist + ".dist-info"
    path = os.path.join(wheel_directory, dist + "-py3-none-any.whl")
    files = []
    if editable:  # a .pth pointing at the source tree
        files.append((PACKAGE + ".pth", (HERE + "\n").encode()))
    else:
        files += [(arc, open(src, "rb").read()) for src, arc in _package_files()]
    files.append((info + "/METADATA", metadata.encode()))
    files.append((info + "/WHEEL", b"Wheel-Version: 1.0\nGenerator: libnn_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"))
    record = [_record_line(arc, data) for arc, data in files] + [info + "/RECORD,,"]
    files.append((info + "/RECORD", ("\n".join(record) + "\n").encode()))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as whl:
        for arc, data in files:
            whl.writestr(zipfile.ZipInfo(arc, date_time=(2026, 1, 1, 0, 0, 0)), data)
    return os.path.basename(path)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, editable=False)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, editable=True)


def build_sdist(sdist_directory, config_settings=None):
    project, metadata = _metadata()
    dist = "%s-%s" % (project["name"], project["version"])
    path = os.path.join(sdist_directory, dist + ".tar.gz")
    with tarfile.open(path, "w:gz") as tar:
        for rel in ["pyproject.toml", "README.md", "_build/libnn_build.py"] + [a for _, a in _package_files()]:
            tar.add(os.path.join(HERE, rel), arcname="%s/%s" % (dist, rel))
        info = tarfile.TarInfo("%s/PKG-INFO" % dist)
        data = metadata.encode()
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return os.path.basename(path)
