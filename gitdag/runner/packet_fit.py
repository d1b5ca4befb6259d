"""Bounding a packet: the largest parts are cut first (water-filling), each with a visible note."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Section:
    head: str  # never cut
    body: str  # cut when the packet is too big
    cuttable: bool = True

    def __post_init__(self) -> None:
        # One newline at the end of every body, so sections are separated by one blank line.
        self.body = self.body.rstrip("\n") + "\n"


def note(removed: int) -> str:
    return f"\n[… cut {removed} bytes …]\n"


def fit(sections: list[Section], max_bytes: int) -> None:
    """Cut the largest cuttable bodies first until the packet fits (water-filling)."""
    sizes = [len(s.body.encode("utf-8")) for s in sections]
    joins = max(0, len(sections) - 1)
    fixed = joins + sum(len(s.head.encode("utf-8")) for s in sections)
    fixed += sum(size for s, size in zip(sections, sizes, strict=True) if not s.cuttable)
    cuttable = [i for i, s in enumerate(sections) if s.cuttable]
    budget = max_bytes - fixed
    if sum(sizes[i] for i in cuttable) <= budget:
        return
    cap = water_level([sizes[i] for i in cuttable], max(0, budget))
    for i in cuttable:
        if sizes[i] > cap:
            sections[i].body = cut(sections[i].body, cap)


def water_level(sizes: list[int], budget: int) -> int:
    """Return the largest cap such that sum(min(size, cap)) <= budget."""
    ordered = sorted(sizes)
    remaining = budget
    for index, size in enumerate(ordered):
        left = len(ordered) - index
        if size * left > remaining:
            return remaining // left
        remaining -= size
    return ordered[-1] if ordered else 0


def cut(text: str, limit: int) -> str:
    """Keep the start of `text` so that it plus the cut note is at most `limit` bytes."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    keep = max(0, limit - len(note(len(raw)).encode("utf-8")))
    head = raw[:keep].decode("utf-8", "ignore")
    newline = head.rfind("\n")
    if newline >= len(head) * 3 // 4:  # end on a whole line when that loses little
        head = head[: newline + 1]
    removed = len(raw) - len(head.encode("utf-8"))
    return head.rstrip("\n") + note(removed)
