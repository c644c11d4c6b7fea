"""Paths the tests share, so a test file can live in any sub-folder of tests/."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
TEXTURES = ROOT / "data" / "textures"
RECIPES = ROOT / "recipes"
NOTEBOOKS = ROOT / "notebooks"
FIXTURES = TESTS / "fixtures"
