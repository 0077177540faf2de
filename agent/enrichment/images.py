"""Split an image reference into repository, tag and digest as Falco reports them.

``registry:5000/team/app:1.2@sha256:ab..`` -> (``registry:5000/team/app``,
``1.2``, ``sha256:ab..``).  A reference without tag or digest gets the tag
``latest``, which is what the runtime pulled.
"""

from __future__ import annotations


def split_image(ref: str) -> tuple[str, str | None, str | None]:
    """(repository, tag, digest) of an image reference."""
    digest: str | None = None
    name = ref
    if "@" in name:
        name, _, digest = name.partition("@")
    tag: str | None = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    # a colon before the last slash is a registry port, not a tag
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
    if tag is None and digest is None:
        tag = "latest"
    return name, tag, digest


def strip_image_id(image_id: str) -> str:
    """``sha256:<hex>`` -> ``<hex>``; other forms unchanged."""
    _, sep, rest = image_id.partition(":")
    return rest if sep and image_id.startswith("sha256:") else image_id
