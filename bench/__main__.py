"""Runs every benchmark and prints its figures. Nothing here passes or fails on speed."""

from __future__ import annotations


def main() -> None:
    print("lindungi bench: no benchmarks yet")


if __name__ == "__main__":
    main()
