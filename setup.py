"""The one thing pyproject.toml cannot say: ship `.dagain-template/` as package `gitdag._template`.

`gitdag init` copies the template into a repository; `gitdag.template` finds it through
importlib.resources in any kind of install (wheel, sdist, editable, pipx). Everything else is in
pyproject.toml.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["gitdag", "gitdag.*"]), "gitdag._template"],
    package_dir={"gitdag._template": ".dagain-template"},
    package_data={
        "gitdag._template": ["*", ".*", "*/*", "*/.*"],
        "gitdag.ui": ["static/*", "static/vendor/*"],
        "gitdag": ["schemas/*.json"],  # the workflow file's JSON Schema (docs/workflows.md)
    },
    include_package_data=False,
)
