"""Package discovery only; metadata lives in pyproject.toml.

The repository keeps the layout fixed by the project (agent/, operator/ at the
top level) while installing them as falcopy.agent and falcopy.operator.
"""

from setuptools import find_packages, setup

ROOTS = {"falcopy": "falcopy", "falcopy.agent": "agent", "falcopy.operator": "operator"}


def _packages() -> tuple[list[str], dict[str, str]]:
    packages: list[str] = []
    package_dir: dict[str, str] = {}
    for name, folder in ROOTS.items():
        package_dir[name] = folder
        packages.append(name)
        for sub in find_packages(folder):
            packages.append(f"{name}.{sub}")
    return packages, package_dir


PACKAGES, PACKAGE_DIR = _packages()
setup(packages=PACKAGES, package_dir=PACKAGE_DIR)
