"""Packaging that pyproject.toml cannot say alone: the top-level `config/` folder (the defaults a newcomer edits
in a checkout) ships inside the wheel as the package `bot.defaults`, so an installed copy has its settings,
routing policy, NLU data and FAQ answers. Everything else is in pyproject.toml."""

from setuptools import find_namespace_packages, setup

setup(
    packages=[*find_namespace_packages(include=["bot*", "channels*", "crm_store*", "nlu*"]), "bot.defaults"],
    package_dir={"bot.defaults": "config"},
)
