"""Where the images of a class-folder source are: ``[top/]train|test/<class>/<file>``.

Shared by the folder and the archive readers of :mod:`.image_folder`, which
list names first and decode only once the layout is known.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .errors import ImageLayoutError
from .types import CIFAR10_CLASSES

SPLITS = ("train", "test")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
EXPECTED = "train/<class>/* and test/<class>/* images (PNG or JPEG, 32×32 RGB)"


def hidden(name: str) -> bool:
    """Dot-files and macOS resource folders are not data (``.DS_Store``, ``__MACOSX``)."""
    return any(part.startswith(".") or part == "__MACOSX" for part in name.split("/"))


def is_candidate(name: str) -> bool:
    """Could ``name`` be ``[top/]split/class/file``? (Decoded early; the layout decides.)"""
    parts = name.split("/")
    return (len(parts) == 3 and parts[0] in SPLITS) or (len(parts) == 4 and parts[1] in SPLITS)


# --- layout ----------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    root: str  # "" or the one top-level folder holding train/ and test/
    class_names: tuple[str, ...]
    files: dict[str, list[tuple[str, int]]]  # split -> [(relative path, label)], sorted


def _class_order(names: set[str]) -> tuple[str, ...]:
    """CIFAR-10's official order for CIFAR-10's classes, else sorted names."""
    if names == set(CIFAR10_CLASSES):
        return CIFAR10_CLASSES
    return tuple(sorted(names))


def find_layout(files: Iterable[str], dirs: Iterable[str], where: str) -> Layout:
    """Check that ``files`` (relative POSIX paths) form ``[top/]train|test/<class>/<file>``.

    ``dirs`` lists folders (including empty ones); hidden entries must be removed.
    Raises :class:`ImageLayoutError` naming ``where``, what was found and what is expected.
    """
    files = list(files)
    all_dirs = set(dirs)
    for name in files:
        parent = name.rpartition("/")[0]
        while parent and parent not in all_dirs:
            all_dirs.add(parent)
            parent = parent.rpartition("/")[0]

    tops = sorted(
        d
        for d in all_dirs
        if "/" not in d and (f"{d}/train" in all_dirs or f"{d}/test" in all_dirs)
    )
    if "train" in all_dirs or "test" in all_dirs:
        root = ""
    elif len(tops) == 1:
        root = tops[0]
    elif tops:
        raise ImageLayoutError(
            f"{where} holds train/ or test/ folders under several top-level folders {tops}; "
            f"expected {EXPECTED}, at the top level or under one top-level folder"
        )
    else:
        top_level = sorted(
            {name.split("/")[0] for name in files} | {d.split("/")[0] for d in all_dirs}
        )
        raise ImageLayoutError(
            f"{where} has no train/ or test/ folder (found at the top level: "
            f"{top_level[:10]}{' …' if len(top_level) > 10 else ''}); expected {EXPECTED}, "
            "at the top level or under one top-level folder"
        )
    prefix = f"{root}/" if root else ""
    for split in SPLITS:
        if f"{prefix}{split}" not in all_dirs:
            raise ImageLayoutError(
                f"{where} has no {prefix}{split}/ folder; expected {prefix}train/<class>/* and "
                f"{prefix}test/<class>/* images"
            )

    classes: dict[str, set[str]] = {split: set() for split in SPLITS}
    for d in sorted(all_dirs):
        for split in SPLITS:
            head = f"{prefix}{split}/"
            if d.startswith(head):
                rest = d[len(head) :]
                if "/" in rest:
                    raise ImageLayoutError(
                        f"{where} has a nested folder {d}/; expected the images directly in "
                        f"{prefix}{split}/<class>/ (no sub-folders)"
                    )
                classes[split].add(rest)
    per_class: dict[str, dict[str, list[str]]] = {split: {} for split in SPLITS}
    for name in files:
        for split in SPLITS:
            head = f"{prefix}{split}/"
            if name.startswith(head):
                cls, _, file_name = name[len(head) :].partition("/")
                if not file_name:
                    raise ImageLayoutError(
                        f"{where} has the file {name} directly in {prefix}{split}/; expected "
                        f"images in class folders, {prefix}{split}/<class>/<image>"
                    )
                per_class[split].setdefault(cls, []).append(name)

    for split in SPLITS:
        if not classes[split]:
            raise ImageLayoutError(
                f"{where}: {prefix}{split}/ holds no class folders; expected "
                f"{prefix}{split}/<class>/<image> for every class"
            )
    only_train = sorted(classes["train"] - classes["test"])
    only_test = sorted(classes["test"] - classes["train"])
    if only_train or only_test:
        raise ImageLayoutError(
            f"{where}: {prefix}train/ and {prefix}test/ hold different class folders — "
            f"{prefix}test/ is missing the class folder(s) {only_train} and {prefix}train/ is "
            f"missing {only_test}; expected the same class folders in both "
            f"(train: {sorted(classes['train'])}, test: {sorted(classes['test'])})"
        )
    for split in SPLITS:
        for cls in sorted(classes[split]):
            if not per_class[split].get(cls):
                raise ImageLayoutError(
                    f"{where}: the class folder {prefix}{split}/{cls}/ is empty; expected at "
                    f"least one image in it (or remove class {cls!r} from both train/ and test/)"
                )

    class_names = _class_order(classes["train"])
    label_of = {name: label for label, name in enumerate(class_names)}
    ordered = {
        split: [
            (name, label_of[cls]) for cls in class_names for name in sorted(per_class[split][cls])
        ]
        for split in SPLITS
    }
    return Layout(root=root, class_names=class_names, files=ordered)
